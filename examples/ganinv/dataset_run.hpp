/// @file dataset_run.hpp
/// @brief The run of one dataset job (`invert`, `encode` or `tune` over --image/--dir/--list,
///        docs/datasets.md): rank 0 takes the output folder and decides which images this run
///        does, the batches go through the ranks' work queue, every image ends in one manifest
///        line, and a job of several ranks gets its summary from those lines. A command brings
///        the work of one batch and the read-back check of one image's outputs.
#pragma once

#include "dataset_job.hpp"
#include "dataset_summary.hpp"
#include "invert_support.hpp"
#include "job_comm.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace ganinv::cli {

/// The images of a job: --list FILE, then --image and --dir.
inline std::vector<std::filesystem::path> job_paths(const Args& a) {
    std::vector<std::filesystem::path> paths;
    if (a.has("list")) paths = read_path_list(*a.get("list"));
    if (!a.has("list") || a.has("image") || a.has("dir")) {
        const auto more = collect_image_paths(a);
        paths.insert(paths.end(), more.begin(), more.end());
    }
    return paths;
}

/// Empty when the outputs of the image named NAME are all there and read back whole; otherwise
/// the first reason they are not (what `--resume` prints).
using OutputCheck = std::function<std::string(const std::string& name)>;

class DatasetJob {
public:
    /// What a command tells the job about itself.
    struct Spec {
        std::string command;  ///< "invert": the messages' "to invert"
        std::string done;     ///< "inverted": "... the others were inverted"
        std::filesystem::path out;
        Index batch = 8;
        bool resume = false;
        std::string device = "cpu";  ///< the manifest's device of this rank ("cuda:3")
    };

    /// Rank 0 creates the folder, takes its lock and plans the run (every image, or with --resume
    /// those not complete), then every rank learns the plan. A failure of rank 0 is thrown there;
    /// the other ranks then see started() == false and return 1 (rank 0 says why).
    DatasetJob(JobComm& comm, Spec spec, std::vector<std::filesystem::path> paths, const OutputCheck& check)
        : comm_(comm), spec_(std::move(spec)), paths_(std::move(paths)), names_(unique_output_names(paths_)) {
        std::string plan = "error";
        std::exception_ptr failure;
        if (comm_.rank() == 0) {
            try {
                std::filesystem::create_directories(spec_.out);
                lock_.emplace(spec_.out);
                std::ostringstream os;
                os << "ok";
                for (long long i : plan_images(check)) os << ' ' << i;
                plan = os.str();
            } catch (...) {
                failure = std::current_exception();
            }
        }
        plan = comm_.broadcast(plan);
        if (failure) {
            comm_.finish();
            std::rethrow_exception(failure);
        }
        if (plan.rfind("ok", 0) != 0) {
            comm_.finish();
            return;
        }
        started_ = true;
        std::istringstream is(plan.substr(2));
        for (long long i; is >> i;) todo_.push_back(i);
        // Batches of consecutive images of the plan: the same batches whatever the number of
        // ranks, so an image is processed with the same neighbours and seed and gets the same code.
        const auto b = static_cast<std::size_t>(spec_.batch);
        for (std::size_t b0 = 0; b0 < todo_.size(); b0 += b)
            batches_.emplace_back(todo_.begin() + static_cast<std::ptrdiff_t>(b0),
                                  todo_.begin() + static_cast<std::ptrdiff_t>(std::min(todo_.size(), b0 + b)));
        manifest_.emplace(spec_.out);
    }
    DatasetJob(const DatasetJob&) = delete;
    DatasetJob& operator=(const DatasetJob&) = delete;

    bool started() const { return started_; }
    bool many() const { return comm_.size() > 1; }
    int rank() const { return comm_.rank(); }
    const std::filesystem::path& path(long long i) const { return paths_[static_cast<std::size_t>(i)]; }
    const std::string& name(long long i) const { return names_[static_cast<std::size_t>(i)]; }
    const std::vector<long long>& todo() const { return todo_; }
    std::size_t batch_count() const { return batches_.size(); }

    /// One message on stderr in one write: rank 0's worker thread and its progress line share it.
    static void say(const std::string& line) { std::cerr << (line + "\n") << std::flush; }

    /// A manifest line for image i with this rank's fields filled in; the command adds the scores.
    ManifestEntry entry(long long i) const {
        ManifestEntry e;
        e.image = path(i).string();
        e.name = name(i);
        e.rank = comm_.rank();
        e.device = spec_.device;
        return e;
    }
    /// Appends `e`, which must come after the image's outputs are in place (the line vouches for them).
    void record(const ManifestEntry& e) { manifest_->append(e); }
    /// Image i failed: an `error` line and a message; the job goes on.
    void fail(long long i, const std::string& why, double seconds) {
        say(concat("error: ", path(i).string(), ": ", why));
        ManifestEntry e = entry(i);
        e.error = why;
        e.seconds = seconds;
        record(e);
    }

    /// The images of a batch that load (as generator targets [n, C, R, R]) and their indices; each
    /// one that does not is an `error` line, counted in `tally.failed`.
    struct LoadedBatch {
        std::vector<long long> ids;
        Tensor<float> images;
    };
    LoadedBatch load_batch(const JobBatch& b, Index R, Index C, const Args& a, JobTally& tally) {
        const auto t0 = std::chrono::steady_clock::now();
        LoadedBatch out;
        std::vector<Tensor<float>> rows;
        for (long long i : b) {
            try {
                std::vector<std::string> warnings;
                rows.push_back(load_target(path(i), R, C, !a.has("no-resize"), a.max_pixels(), warnings));
                for (const auto& msg : warnings) say("warning: " + msg);
                out.ids.push_back(i);
            } catch (const Error& e) {
                fail(i, e.what(), 0.0);
                ++tally.failed;
            }
        }
        if (!rows.empty()) out.images = stack_rows(rows, C, R);
        times_.loading += seconds_since(t0);
        return out;
    }

    /// The images of a batch's result, image k of the batch being job image ids[k]: their files
    /// (write_image_outputs, each complete or absent), written by several threads at once (one
    /// 1024^2 image's PNGs take ~0.5 s to encode), then, in the batch's order, each image's `ok`
    /// line, or its `error` line when a file could not be written. The summary rows of the successes.
    std::vector<std::optional<ImageSummary>> write_results(const std::vector<long long>& ids, const Tensor<float>& targets,
                                                           const InversionResult& r, JobTally& tally) {
        Written w = write_batch(ids, targets, r);
        tally += w.tally;
        times_.outputs += w.seconds;
        return std::move(w.rows);
    }

    /// What a command does with a batch's summary rows once its files are written.
    using RowsWritten = std::function<void(std::vector<std::optional<ImageSummary>>&)>;

    /// write_results, overlapped with the next batch in a one-process run: the files are written
    /// on a background thread while the command inverts the next batch (the GPU would otherwise
    /// wait ~1 s per 1024^2 image), and `done` gets the rows when they are collected, on this
    /// thread, at the next call or at the end of run(). Several ranks write at once instead: a
    /// rank's manifest lines must be in place before it asks for more work. Returns the tally
    /// of the writes collected now (the previous batch's, in one process).
    JobTally write_results_overlapped(std::vector<long long> ids, Tensor<float> targets, InversionResult r,
                                      RowsWritten done) {
        JobTally tally = finish_pending_writes();
        if (many()) {
            std::vector<std::optional<ImageSummary>> rows = write_results(ids, targets, r, tally);
            done(rows);
            return tally;
        }
        pending_done_ = std::move(done);
        pending_ = std::async(std::launch::async, [this, ids = std::move(ids), targets = std::move(targets),
                                                   r = std::move(r)] { return write_batch(ids, targets, r); });
        return tally;
    }

    /// Runs `work` on every batch through the ranks' queue, with the job's progress line on rank 0
    /// (in one process only its last line: per-batch progress bars say the rest). The whole job's totals.
    JobTally run(const std::function<JobTally(const JobBatch&)>& work) {
        const auto t0 = std::chrono::steady_clock::now();
        times_.startup = seconds_since(process_start());
        std::optional<JobProgress> progress;
        if (comm_.rank() == 0) progress.emplace(static_cast<long long>(todo_.size()), many() ? 10.0 : 1e9);
        double working = 0;  // in `work`, of which load_batch and write_results time their own parts
        const auto timed_work = [&](const JobBatch& b) {
            const auto tb = std::chrono::steady_clock::now();
            JobTally t = work(b);
            working += seconds_since(tb);
            return t;
        };
        total_ = comm_.run_queue(batches_, timed_work, [&](const JobTally& t) {
            if (progress) progress->update(t.done + t.failed, t.failed);
        });
        times_.inversion = std::max(0.0, working - times_.loading - times_.outputs);
        if (pending_.valid()) {  // the last batch's files (one process)
            total_ += finish_pending_writes();
            if (progress) progress->update(total_.done + total_.failed, total_.failed);
        }
        seconds_ = seconds_since(t0);
        return total_;
    }

    /// This process's time so far; a command adds the `summary` part (JobTimes).
    JobTimes& times() { return times_; }

    /// A job of several ranks, on rank 0 after run(): DIR/summary.json and summary.md for every
    /// image of the job's list, from the last manifest line of each (so a resumed job's summary
    /// covers the images of earlier runs too). `settings` are the command's (model, steps, ...).
    /// No overview.png: it needs every image's pixels, which rank 0 does not have.
    void write_manifest_summary(Json settings) const {
        if (comm_.rank() != 0 || !many()) return;
        write_manifest_summary_files(spec_.out, paths_, names_, std::move(settings),
                                     JobRunInfo{spec_.command, comm_.size(), static_cast<long long>(todo_.size()), seconds_});
    }

    /// Releases the folder and ends the ranks; the exit status: 1 when an image of this run failed.
    int finish() {
        lock_.reset();
        comm_.finish();
        if (total_.failed == 0) return 0;
        if (comm_.rank() == 0)
            std::cerr << total_.failed << " of " << todo_.size() << " image(s) failed (listed above and in "
                      << (spec_.out / ManifestWriter::kFileName).string() << " with status \"error\"); the others were "
                      << spec_.done << "\n";
        return 1;
    }

private:
    /// A batch's written files: the manifest lines' tally, the summary rows, the seconds it took.
    struct Written {
        JobTally tally;
        std::vector<std::optional<ImageSummary>> rows;
        double seconds = 0;
    };

    /// The work of write_results; touches no member but the manifest (one atomic append per
    /// line) and stderr, so it may run on the background thread of write_results_overlapped.
    Written write_batch(const std::vector<long long>& ids, const Tensor<float>& targets, const InversionResult& r) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto n = static_cast<std::ptrdiff_t>(ids.size());
        Written w;
        w.rows.resize(ids.size());
        std::vector<std::string> errors(ids.size());
        std::vector<std::exception_ptr> crashes(ids.size());  // not an Error (bad_alloc): rethrown as before
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
        for (std::ptrdiff_t k = 0; k < n; ++k) {
            const auto u = static_cast<std::size_t>(k);
            try {  // nothing may leave an OpenMP loop's body by an exception
                w.rows[u] = write_image_outputs(spec_.out.string(), name(ids[u]), static_cast<Index>(k), targets, r);
            } catch (const Error& e) {
                errors[u] = e.what();
            } catch (...) {
                crashes[u] = std::current_exception();
            }
        }
        for (std::size_t k = 0; k < ids.size(); ++k) {
            if (crashes[k]) std::rethrow_exception(crashes[k]);
            if (!w.rows[k]) {
                fail(ids[k], errors[k], r.seconds / static_cast<double>(targets.dim(0)));
                ++w.tally.failed;
                continue;
            }
            const ImageSummary& s = *w.rows[k];
            ManifestEntry e = entry(ids[k]);
            e.ok = true;
            e.psnr = s.m.psnr;
            e.ssim = s.m.ssim;
            e.steps = s.steps;
            e.seconds = s.seconds;
            record(e);  // after the files: the line vouches for outputs already in place
            ++w.tally.done;
        }
        w.seconds = seconds_since(t0);
        return w;
    }

    /// Waits for the background write of the previous batch (rethrowing what it threw), hands
    /// its rows to its `done` and returns its tally. The wait is the part of the writing that
    /// the inversion did not hide: `outputs` in the time breakdown; the writing itself is
    /// `outputs_background`.
    JobTally finish_pending_writes() {
        if (!pending_.valid()) return {};
        const auto t0 = std::chrono::steady_clock::now();
        Written w = pending_.get();
        times_.outputs += seconds_since(t0);
        times_.outputs_background += w.seconds;
        RowsWritten done = std::move(pending_done_);
        pending_done_ = nullptr;
        done(w.rows);
        return w.tally;
    }

    /// Rank 0, holding the lock: the indices of the images this run does. Without --resume that
    /// is every image (and the manifest starts afresh); with it, every image but those whose last
    /// manifest line says ok AND whose outputs read back whole.
    std::vector<long long> plan_images(const OutputCheck& check) const {
        const std::filesystem::path& out = spec_.out;
        if (const int n = remove_stale_temporaries(out); n > 0)
            std::cerr << "note: removed " << n << " temporary file(s) that an interrupted job left in " << out.string() << "\n";
        std::vector<long long> todo;
        if (!spec_.resume) {
            write_file_atomically(out / ManifestWriter::kFileName, std::string_view());
            for (std::size_t i = 0; i < paths_.size(); ++i) todo.push_back(static_cast<long long>(i));
            return todo;
        }
        int bad_lines = 0;
        const std::set<std::string> done = images_done_in_manifest(out, bad_lines);
        if (bad_lines > 0) std::cerr << "warning: " << bad_lines << " manifest line(s) could not be read; their images are redone\n";
        for (std::size_t i = 0; i < paths_.size(); ++i) {
            if (done.count(paths_[i].string()) != 0) {
                const std::string why = check(names_[i]);
                if (why.empty()) continue;
                std::cerr << "resume: redoing " << paths_[i].string() << ": " << why << "\n";
            }
            todo.push_back(static_cast<long long>(i));
        }
        std::cerr << "resume: " << paths_.size() - todo.size() << " of " << paths_.size() << " images are done, " << todo.size()
                  << " to " << spec_.command << "\n";
        return todo;
    }

    JobComm& comm_;
    Spec spec_;
    std::vector<std::filesystem::path> paths_;
    std::vector<std::string> names_;
    std::optional<OutputLock> lock_;
    bool started_ = false;
    std::vector<long long> todo_;
    std::vector<JobBatch> batches_;
    std::optional<ManifestWriter> manifest_;
    JobTally total_;
    double seconds_ = 0;
    JobTimes times_;
    RowsWritten pending_done_;
    // Last: destroyed first, so a write still running when the job ends by an exception is
    // waited for while the members it uses are alive.
    std::future<Written> pending_;
};

}  // namespace ganinv::cli
