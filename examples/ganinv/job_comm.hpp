/// @file job_comm.hpp
/// @brief The processes of a dataset job: one process, or the ranks of an MPI launch (mpirun,
///        srun) when ganinv was built with MPI. The interface has no MPI type in it, so only
///        mpi/job_comm_mpi.cpp includes <mpi.h>; a build without MPI links the one-process kind.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ganinv::cli {

/// Images finished and failed, by one batch or by a whole job.
struct JobTally {
    long long done = 0, failed = 0;
    JobTally& operator+=(const JobTally& o) {
        done += o.done;
        failed += o.failed;
        return *this;
    }
};

/// A batch of work: indices into the job's list of images.
using JobBatch = std::vector<long long>;

class JobComm {
public:
    virtual ~JobComm() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    /// The rank among those on this host (picks the GPU: local_rank % device count).
    virtual int local_rank() const = 0;
    /// Rank 0's `text`, on every rank.
    virtual std::string broadcast(const std::string& text) = 0;
    /// Hands rank 0's `batches` out one at a time to whichever rank asks next (a dynamic queue:
    /// a slow rank takes fewer), runs `work` on each, and calls `progress` on rank 0 with the
    /// running totals. Returns the whole job's totals, on every rank.
    virtual JobTally run_queue(const std::vector<JobBatch>& batches, const std::function<JobTally(const JobBatch&)>& work,
                               const std::function<void(const JobTally&)>& progress) = 0;
    /// The normal end (MPI_Finalize). A rank that leaves without it (an error) lets the launcher
    /// end the other ranks instead of leaving them waiting.
    virtual void finish() {}
};

/// The ranks of the MPI launch this process belongs to, or a job of one process. Throws
/// UsageError when launched by mpirun/srun as one of several ranks of a ganinv built without MPI
/// (each rank would run the whole job).
std::unique_ptr<JobComm> make_job_comm();

}  // namespace ganinv::cli
