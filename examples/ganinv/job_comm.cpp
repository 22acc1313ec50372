// The one-process JobComm, and the choice between it and the MPI one (mpi/job_comm_mpi.cpp,
// compiled when CMake found MPI; GANINV_CLI_HAS_MPI says so).
#include "cli.hpp"
#include "job_comm.hpp"

#include <cstdlib>
#include <string>

namespace ganinv::cli {

#if GANINV_CLI_HAS_MPI
std::unique_ptr<JobComm> make_mpi_job_comm();
#endif

namespace {

class SingleProcess final : public JobComm {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int local_rank() const override { return 0; }
    std::string broadcast(const std::string& text) override { return text; }
    JobTally run_queue(const std::vector<JobBatch>& batches, const std::function<JobTally(const JobBatch&)>& work,
                       const std::function<void(const JobTally&)>& progress) override {
        JobTally total;
        for (const auto& b : batches) {
            total += work(b);
            progress(total);
        }
        return total;
    }
};

/// The number of ranks a launcher says this process is one of (Open MPI's mpirun, or a PMI
/// launcher such as srun; PMIx names the rank only, counted as 1); 0 when no launcher started it.
int launcher_world_size() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* v = std::getenv(var)) return std::atoi(v);
    return std::getenv("PMIX_RANK") != nullptr ? 1 : 0;
}

}  // namespace

std::unique_ptr<JobComm> make_job_comm() {
    const int launched = launcher_world_size();
#if GANINV_CLI_HAS_MPI
    if (launched > 0) return make_mpi_job_comm();
#else
    if (launched > 1)
        throw UsageError(concat("started as one of ", launched, " MPI ranks, but this ganinv was built without MPI: every rank "
                                "would run the whole job. Rebuild with Open MPI installed (CMake finds it), or run one process"));
#endif
    return std::make_unique<SingleProcess>();
}

}  // namespace ganinv::cli
