// The MPI JobComm: rank 0 serves a dynamic work queue to the other ranks and works through the
// same queue itself on a second thread. Only the main thread of each rank calls MPI
// (MPI_THREAD_FUNNELED), and every wait polls with a short sleep: Open MPI's blocking calls spin
// on a core, which would take it from the ranks that are inverting.
#include "../cli.hpp"
#include "../job_comm.hpp"

#include <mpi.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

namespace ganinv::cli {

namespace {

constexpr int kRequestTag = 1801;  ///< worker -> 0: {done, failed} of its last batch, and "next, please"
constexpr int kBatchTag = 1802;    ///< 0 -> worker: the image indices of a batch; empty: no more work

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw IoError(concat("MPI: ", what, " failed: ", text));
}

void nap() { std::this_thread::sleep_for(std::chrono::milliseconds(2)); }

void wait_politely(MPI_Request& r, const char* what) {
    for (int flag = 0;;) {
        check(MPI_Test(&r, &flag, MPI_STATUS_IGNORE), what);
        if (flag) return;
        nap();
    }
}

class MpiJob final : public JobComm {
public:
    MpiJob() {
        int provided = 0;
        check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        if (provided < MPI_THREAD_FUNNELED) throw IoError("MPI: this MPI library does not support threads (MPI_THREAD_FUNNELED)");
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
        MPI_Comm node;
        check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_free(&node);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }

    std::string broadcast(const std::string& text) override {
        long long n = static_cast<long long>(text.size());
        MPI_Request r;
        check(MPI_Ibcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD, &r), "MPI_Ibcast");
        wait_politely(r, "broadcast");
        std::string out = rank_ == 0 ? text : std::string(static_cast<std::size_t>(n), '\0');
        if (n > 0) {
            check(MPI_Ibcast(out.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD, &r), "MPI_Ibcast");
            wait_politely(r, "broadcast");
        }
        return out;
    }

    JobTally run_queue(const std::vector<JobBatch>& batches, const std::function<JobTally(const JobBatch&)>& work,
                       const std::function<void(const JobTally&)>& progress) override {
        JobTally total = rank_ == 0 ? serve(batches, work, progress) : ask(work);
        long long both[2] = {total.done, total.failed};
        MPI_Request r;
        check(MPI_Ibcast(both, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD, &r), "MPI_Ibcast");
        wait_politely(r, "the job's totals");
        return {both[0], both[1]};
    }

    void finish() override { MPI_Finalize(); }

private:
    JobTally serve(const std::vector<JobBatch>& batches, const std::function<JobTally(const JobBatch&)>& work,
                   const std::function<void(const JobTally&)>& progress) {
        std::mutex m;
        std::size_t next = 0;
        JobTally total;
        bool changed = false;
        const auto take = [&]() -> const JobBatch* {
            std::lock_guard<std::mutex> lock(m);
            return next < batches.size() ? &batches[next++] : nullptr;
        };
        std::exception_ptr failure;
        std::thread own([&] {  // rank 0's share of the work, from the same queue
            try {
                while (const JobBatch* b = take()) {
                    const JobTally t = work(*b);
                    std::lock_guard<std::mutex> lock(m);
                    total += t;
                    changed = true;
                }
            } catch (...) {
                failure = std::current_exception();
            }
        });
        int working = size_ - 1;
        while (working > 0) {
            int flag = 0;
            MPI_Status st;
            check(MPI_Iprobe(MPI_ANY_SOURCE, kRequestTag, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
            if (!flag) {
                report_if_changed(m, changed, total, progress);
                nap();
                continue;
            }
            long long tally[2];
            check(MPI_Recv(tally, 2, MPI_LONG_LONG, st.MPI_SOURCE, kRequestTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
            {
                std::lock_guard<std::mutex> lock(m);
                total += JobTally{tally[0], tally[1]};
                changed = true;
            }
            const JobBatch* b = take();
            const int n = b ? static_cast<int>(b->size()) : 0;
            check(MPI_Send(b ? b->data() : nullptr, n, MPI_LONG_LONG, st.MPI_SOURCE, kBatchTag, MPI_COMM_WORLD), "MPI_Send");
            if (!b) --working;
        }
        // The other ranks are done; rank 0's own last batch may still run (join() does not spin).
        own.join();
        if (failure) std::rethrow_exception(failure);
        std::lock_guard<std::mutex> lock(m);
        progress(total);
        return total;
    }

    static void report_if_changed(std::mutex& m, bool& changed, const JobTally& total,
                                  const std::function<void(const JobTally&)>& progress) {
        JobTally now;
        {
            std::lock_guard<std::mutex> lock(m);
            if (!changed) return;
            changed = false;
            now = total;
        }
        progress(now);
    }

    JobTally ask(const std::function<JobTally(const JobBatch&)>& work) {
        JobTally last;
        for (;;) {
            long long tally[2] = {last.done, last.failed};
            check(MPI_Send(tally, 2, MPI_LONG_LONG, 0, kRequestTag, MPI_COMM_WORLD), "MPI_Send");
            MPI_Status st;
            for (int flag = 0;;) {
                check(MPI_Iprobe(0, kBatchTag, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
                if (flag) break;
                nap();
            }
            int n = 0;
            MPI_Get_count(&st, MPI_LONG_LONG, &n);
            JobBatch b(static_cast<std::size_t>(n));
            check(MPI_Recv(b.data(), n, MPI_LONG_LONG, 0, kBatchTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
            if (n == 0) return {};
            last = work(b);
        }
    }

    int rank_ = 0, size_ = 1, local_rank_ = 0;
};

}  // namespace

std::unique_ptr<JobComm> make_mpi_job_comm() { return std::make_unique<MpiJob>(); }

}  // namespace ganinv::cli
