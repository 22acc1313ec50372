"""Arrays across the boundary: zero-copy in and out, bad dtype/shape/layout errors, exception
classes and messages."""

import numpy as np
import pytest

import ganinv


def test_numpy_input_is_read_in_place(generator):
    ws = generator.mapping(generator.seed_z(1, count=2))
    generator.synthesis(ws)
    assert ganinv._ganinv._debug_addresses()["ws"] == ws.ctypes.data
    z = np.ascontiguousarray(generator.seed_z(2))
    generator.mapping(z)
    assert ganinv._ganinv._debug_addresses()["z"] == z.ctypes.data


def test_read_only_input_is_accepted_without_copy(generator):
    ws = generator.mapping(generator.seed_z(1))
    ws.setflags(write=False)
    generator.synthesis(ws)
    assert ganinv._ganinv._debug_addresses()["ws"] == ws.ctypes.data


def test_torch_cpu_tensor_is_read_in_place(generator):
    torch = pytest.importorskip("torch")
    ws = torch.from_numpy(generator.mapping(generator.seed_z(4)))
    img = generator.synthesis(ws)
    assert ganinv._ganinv._debug_addresses()["ws"] == ws.data_ptr()
    np.testing.assert_array_equal(img, generator.synthesis(ws.numpy()))


def test_results_are_handed_over_not_copied(generator):
    img = generator.synthesis(generator.mapping(generator.seed_z(5)))
    # The array wraps the C++ result's buffer, and NumPy/PyTorch wrap that array again.
    assert img.ctypes.data == ganinv._ganinv._debug_addresses()["return"]
    assert np.asarray(img) is img
    assert img.flags["C_CONTIGUOUS"] and img.dtype == np.float32
    torch = pytest.importorskip("torch")
    assert torch.from_numpy(img).data_ptr() == img.ctypes.data


def test_wrong_dtype_names_argument_and_expected_shape(generator):
    ws = generator.mapping(generator.seed_z(1)).astype(np.float64)
    with pytest.raises(ValueError, match=rf"ws: expected a float32 array of shape \[N, {generator.num_ws}, "
                                         rf"{generator.w_dim}\], got dtype float64"):
        generator.synthesis(ws)


def test_wrong_shape_names_argument_and_expected_shape(generator):
    with pytest.raises(ValueError, match=rf"z: expected a float32 array of shape \[N, {generator.z_dim}\], "
                                         rf"got shape \[2, 3\]"):
        generator.mapping(np.zeros((2, 3), np.float32))
    with pytest.raises(ganinv.ShapeError, match="ws: .* got shape"):
        generator.synthesis(np.zeros((1, generator.w_dim), np.float32))


def test_strided_view_is_refused(generator):
    ws = generator.mapping(generator.seed_z(1, count=3))
    with pytest.raises(ValueError, match="ws: .*C-contiguous"):
        generator.synthesis(ws[::2])


def test_empty_batch_is_refused(generator):
    with pytest.raises(ValueError, match="N >= 1"):
        generator.mapping(np.zeros((0, generator.z_dim), np.float32))


def test_library_errors_become_ganinv_exceptions_with_their_messages(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ganinv.IoError, match="missing.safetensors") as info:
        ganinv.Generator.load(str(missing))
    assert isinstance(info.value, ganinv.Error) and isinstance(info.value, OSError)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x04\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ganinv.FormatError):
        ganinv.Generator.load(str(broken))


def test_bad_arguments_are_value_errors(generator):
    with pytest.raises(ganinv.ValueError, match="noise mode|noise_mode"):
        generator.synthesis(generator.mapping(generator.seed_z(1)), noise_mode="loud")
    with pytest.raises(ValueError, match="device"):
        ganinv.Generator.load(str(generator.path), device="tpu")
    with pytest.raises(ValueError, match="precision"):
        ganinv.Generator.load(str(generator.path), precision="fp8")


def test_cuda_unavailable_is_reported_clearly(generator):
    if ganinv.cuda_available():
        pytest.skip("a CUDA device is usable here (test_cuda.py covers it)")
    # Without the CUDA path the build says so; with it but without a device, the runtime's reason.
    expected = "no usable CUDA device" if ganinv.cuda_built() else "built for the CPU only"
    with pytest.raises(ganinv.Error, match=expected):
        ganinv.Generator.load(str(generator.path), device="cuda")


def test_device_names_are_checked(generator):
    for bad in ("gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0"):
        with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'cuda:N'"):
            ganinv.Generator.load(str(generator.path), device=bad)


def test_stream_needs_a_cuda_generator(generator):
    ws = generator.mapping(generator.seed_z(1))
    with pytest.raises(ValueError, match="stream applies to generators loaded with device='cuda'"):
        generator.synthesis(ws, stream=0)
