#!/usr/bin/env bash
# Dataset-job throughput with 1 and 2 MPI ranks on the CPU (docs/benchmarks.md, issue 18).
# Usage: dataset_ranks_cpu_2026-12-04.sh DIR   (DIR/img: the first 30 bundled Fashion-MNIST images)
cd "${1:-.}" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1
B=${GANINV:-ganinv}; M=${MODEL:-fmnist32.safetensors}
uptime
for np in 1 2; do
  rm -rf "o$np"
  /usr/bin/time -f "np=$np wall %e s" mpirun --oversubscribe -np $np "$B" invert --model "$M" --dir img --out "o$np" --steps 20 --batch 4 2>&1 | grep -E "progress|wall"
  uptime
done
