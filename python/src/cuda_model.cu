// ganinv.Generator(device="cuda"): StyleGAN2<Cuda> on its own stream, handing device results to
// Python without copies (cuda_model.hpp says how streams and released blocks are ordered).
#include "cuda_model.hpp"

#include <ganinv/backend/cuda.cuh>
#include <ganinv/cuda/stream.hpp>
#include <ganinv/loss/any_loss.hpp>
#include <ganinv/loss/pixel.hpp>
#include <ganinv/models/stylegan2.hpp>
#if GANINV_PYTHON_HAS_CUDNN
#include <ganinv/loss/network_losses_cuda.cuh>
#endif

#include <mutex>
#include <utility>

namespace ganinv::python {

namespace {

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

/// Work queued on `waiter` from now on runs after everything queued on `producer` so far.
void order_after(cudaStream_t waiter, cudaStream_t producer) {
    if (waiter == producer) return;
    cudaEvent_t e = nullptr;
    GANINV_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    cudaError_t r = cudaEventRecord(e, producer);
    if (r == cudaSuccess) r = cudaStreamWaitEvent(waiter, e, 0);
    (void)cudaEventDestroy(e);  // allowed once the wait is queued: the wait still happens
    GANINV_CUDA_CHECK(r);
}

/// Makes `device` current for the calling thread (Python threads may have another) and restores
/// the previous one on exit.
class DeviceScope {
public:
    explicit DeviceScope(int device) {
        GANINV_CUDA_CHECK(cudaGetDevice(&previous_));
        if (previous_ != device) GANINV_CUDA_CHECK(cudaSetDevice(device));
    }
    ~DeviceScope() { (void)cudaSetDevice(previous_); }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int previous_ = 0;
};

cuda::CudaOptions options_for(const std::string& precision) {
    cuda::CudaOptions o;
    o.precision = cuda::parse_precision(precision);  // ValueError naming the choices
    return o;
}

int checked_device(int device) {
    std::string why;
    if (!CudaModel::available(&why))
        throw CudaError(concat("device='cuda': no usable CUDA device on this machine (", why, "); use device='cpu'"),
                        cudaErrorNoDevice);
    int count = 0;
    GANINV_CUDA_CHECK(cudaGetDeviceCount(&count));
    GANINV_CHECK(device >= 0 && device < count, ValueError, "device='cuda:", device, "': this machine has ", count,
                 " CUDA device", count == 1 ? "" : "s", " (cuda:0 .. cuda:", count - 1, ")");
    return device;
}

}  // namespace

struct CudaModel::Impl {
    using Buffer = cuda::DeviceTensor;
    /// Restores the thread's device after the members' destruction (declared first: runs last).
    struct RestoreDevice {
        int previous = -1;
        ~RestoreDevice() {
            if (previous >= 0) (void)cudaSetDevice(previous);
        }
    } restore;
    int device;
    cuda::Stream stream;  // destroyed after everything that queues work on it
    Cuda backend;
    StyleGAN2<Cuda> generator;
    std::string name;
    /// Blocks Python let go of, each with an event recorded on the stream its consumer used: they
    /// return to the pool once the model's stream waits for that event (drain, under the model's
    /// lock; releases come from any thread, while the model may be capturing a graph).
    std::mutex released_mutex;
    std::vector<std::pair<cudaEvent_t, cuda::DeviceTensor>> released;

    Impl(const std::string& path, int dev, const std::string& precision)
        : device(dev), backend(stream, options_for(precision)),
          generator(StyleGAN2<Cuda>::load(path, backend)) {
        cudaDeviceProp prop{};
        GANINV_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        const cuda::Precision p = backend.options().precision;
        name = concat(prop.name, " (sm_", prop.major, prop.minor, "), convolutions ", cuda::to_string(p),
                      p == cuda::Precision::fp32 ? "" : (backend.wgmma_enabled() ? " on wgmma kernels" : " on mma.sync kernels"));
    }
    /// Built with `dev` current (CudaModel's constructor); destroyed on any thread.
    ~Impl() {
        (void)cudaGetDevice(&restore.previous);
        (void)cudaSetDevice(device);
        for (auto& [event, tensor] : released) (void)cudaEventDestroy(event);
        // `released`'s tensors go back to the pool, which synchronises its stream before freeing.
    }

    void drain() {
        std::vector<std::pair<cudaEvent_t, cuda::DeviceTensor>> take;
        {
            const std::lock_guard lock(released_mutex);
            take.swap(released);
        }
        for (auto& [event, tensor] : take) {
            const cudaError_t r = cudaStreamWaitEvent(stream, event, 0);
            (void)cudaEventDestroy(event);
            if (r != cudaSuccess) GANINV_CUDA_CHECK(cudaStreamSynchronize(stream));
            tensor = cuda::DeviceTensor();  // back to the pool: reused after the consumer's work
        }
    }

    Buffer upload_rows(const RowsIn& in, const Shape& row_shape, cudaStream_t caller) {
        Shape shape{in.rows};
        shape.insert(shape.end(), row_shape.begin(), row_shape.end());
        if (in.placement == Placement::host)
            return backend.upload(Tensor<float>(shape, std::vector<float>(in.data, in.data + shape_numel(shape))));
        order_after(stream, caller);
        Buffer b = backend.empty(shape);
        GANINV_CUDA_CHECK(cudaMemcpyAsync(b.data(), in.data, b.bytes(), cudaMemcpyDeviceToDevice, stream.get()));
        return b;
    }
};

namespace {

/// What a DeviceArray's owner points to: the result, the model it came from, its consumer stream.
struct HandedOver {
    std::shared_ptr<CudaModel::Impl> model;
    cuda::DeviceTensor tensor;
    cudaStream_t consumer;
};

void release_handed_over(void* p) noexcept {
    auto* h = static_cast<HandedOver*>(p);
    cudaEvent_t e = nullptr;
    const int previous = [] {
        int d = 0;
        (void)cudaGetDevice(&d);
        return d;
    }();
    (void)cudaSetDevice(h->model->device);
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) == cudaSuccess && cudaEventRecord(e, h->consumer) == cudaSuccess) {
        const std::lock_guard lock(h->model->released_mutex);
        h->model->released.emplace_back(e, std::move(h->tensor));
    } else {
        // No event (the context is going away, or the consumer's stream is gone): wait for the
        // whole device instead, then the block may go back to the pool at once.
        if (e) (void)cudaEventDestroy(e);
        (void)cudaDeviceSynchronize();
    }
    delete h;
    (void)cudaSetDevice(previous);
}

DeviceArray hand_over(const std::shared_ptr<CudaModel::Impl>& model, cuda::DeviceTensor&& t, cudaStream_t consumer) {
    DeviceArray a;
    a.data = t.data();
    for (Index d : t.shape()) a.shape.push_back(static_cast<std::size_t>(d));
    a.device = model->device;
    a.owner = new HandedOver{model, std::move(t), consumer};
    a.release = &release_handed_over;
    return a;
}

}  // namespace

bool CudaModel::available(std::string* why) {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        if (why) *why = e != cudaSuccess ? cudaGetErrorString(e) : "no devices";
        return false;
    }
    return true;
}

CudaModel::CudaModel(const std::string& path, int device, const std::string& precision) {
    const int dev = checked_device(device);
    const DeviceScope scope(dev);
    impl_ = std::make_shared<Impl>(path, dev, precision);
}
CudaModel::~CudaModel() = default;

int CudaModel::device() const { return impl_->device; }
std::string CudaModel::device_name() const { return impl_->name; }

DeviceArray CudaModel::mapping(const RowsIn& z, const Truncation& trunc, std::uintptr_t stream) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    m.drain();
    const cudaStream_t caller = as_stream(stream);
    cuda::DeviceTensor ws;
    if (z.placement == Placement::device) {
        order_after(m.stream, caller);
        ws = m.generator.mapping_of_backend_rows(z.data, z.rows, trunc);
    } else {
        ws = m.generator.mapping(m.upload_rows(z, {m.generator.z_dim()}, caller), trunc);
    }
    order_after(caller, m.stream);
    return hand_over(impl_, std::move(ws), caller);
}

DeviceArray CudaModel::synthesis(const RowsIn& ws, NoiseMode mode, std::uint64_t noise_seed, std::uintptr_t stream) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    m.drain();
    const cudaStream_t caller = as_stream(stream);
    const NoiseInput<Cuda> noise{mode, noise_seed};
    cuda::DeviceTensor img;
    if (ws.placement == Placement::device) {
        order_after(m.stream, caller);  // the caller's producer of ws has run
        img = m.generator.synthesis_of_backend_rows(ws.data, ws.rows, noise);
    } else {
        img = m.generator.synthesis(m.upload_rows(ws, {m.generator.num_ws(), m.generator.w_dim()}, caller), noise);
    }
    order_after(caller, m.stream);
    return hand_over(impl_, std::move(img), caller);
}

DeviceArray CudaModel::synthesis_backward(const RowsIn& ws, const RowsIn& grad_img, NoiseMode mode,
                                          std::uint64_t noise_seed, std::uintptr_t stream) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    m.drain();
    const cudaStream_t caller = as_stream(stream);
    const StyleGAN2<Cuda>& g = m.generator;
    const Index r = g.resolution();
    // The backward needs the forward's cache, which keeps its own copy of ws.
    const cuda::DeviceTensor w = m.upload_rows(ws, {g.num_ws(), g.w_dim()}, caller);
    const cuda::DeviceTensor grad = m.upload_rows(grad_img, {g.img_channels(), r, r}, caller);
    StyleGAN2<Cuda>::Cache cache;
    (void)m.generator.synthesis(w, NoiseInput<Cuda>{mode, noise_seed}, &cache);
    cuda::DeviceTensor grad_ws = m.generator.synthesis_backward_ws(cache, grad);
    order_after(caller, m.stream);
    return hand_over(impl_, std::move(grad_ws), caller);
}

Tensor<float> CudaModel::to_host(DeviceArray&& a) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    auto* h = static_cast<HandedOver*>(std::exchange(a.owner, nullptr));
    GANINV_CHECK(h != nullptr, ValueError, "CudaModel::to_host: the array was released already");
    Tensor<float> out;
    try {
        out = m.backend.download(h->tensor);  // waits on the model's stream
    } catch (...) {
        delete h;
        throw;
    }
    delete h;  // nothing but the model's stream used the block: it goes back to the pool at once
    return out;
}

Tensor<float> CudaModel::rows_to_host(const float* data, const Shape& shape, std::uintptr_t stream) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    order_after(m.stream, as_stream(stream));
    Tensor<float> out(shape);
    GANINV_CUDA_CHECK(cudaMemcpyAsync(out.data(), data, sizeof(float) * static_cast<std::size_t>(out.numel()),
                                      cudaMemcpyDeviceToHost, m.stream.get()));
    m.stream.synchronize();
    return out;
}

InversionResult CudaModel::invert(const std::string& space, const std::string& optimizer,
                                  const OptimizerSettings& settings, const std::string& loss_spec,
                                  const LossWeightFiles& files, const InverterOptions& o, const Tensor<float>& targets) {
    Impl& m = *impl_;
    const DeviceScope scope(m.device);
    m.drain();
    const WeightedLossSum<Cuda> loss = build_loss<Cuda>(loss_spec, files, m.backend);
    return run_inversion(space, optimizer, settings, m.generator, loss, o, targets);
}

}  // namespace ganinv::python
