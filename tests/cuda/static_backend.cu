// Compile-only: the Cuda backend provides every operation of the Backend concept (memory, the
// generator's layer operations, the losses' buffer operations). Building test_cuda is the test.
#include <ganinv/backend/cuda.cuh>
#include <ganinv/concepts/backend.hpp>

namespace ganinv {
static_assert(BackendMemory<Cuda>);
static_assert(BackendLayerOps<Cuda>);
static_assert(BackendBufferOps<Cuda>);
static_assert(Backend<Cuda>);
}  // namespace ganinv
