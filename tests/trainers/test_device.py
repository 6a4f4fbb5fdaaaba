"""Where a run trains: the granted-device rule of search trials and the precision of each device."""

from __future__ import annotations

import pytest
import torch

from afpe.trainers.device import DeviceError, granted_device, memory_fraction, precision_name, select_device


def test_no_granted_gpu_is_cpu_whatever_cuda_the_node_has() -> None:
    assert granted_device([], cuda_available=True, visible_devices="0,1") == "cpu"
    assert granted_device([], cuda_available=False) == "cpu"


def test_a_granted_gpu_is_its_position_among_the_visible_devices() -> None:
    assert granted_device([3], cuda_available=True, visible_devices="3") == "cuda:0"
    assert granted_device(["2"], cuda_available=True, visible_devices="0,2") == "cuda:1"
    assert granted_device([2], cuda_available=True, visible_devices=None) == "cuda:2"


def test_a_fraction_of_a_gpu_caps_its_memory_at_that_fraction() -> None:
    assert [memory_fraction(share) for share in (0.5, 0.25, 0.125)] == [0.5, 0.25, 0.125]
    assert memory_fraction(1.0) is None and memory_fraction(0.0) is None, "a whole GPU or none: no cap"


def test_a_granted_gpu_torch_cannot_use_fails_naming_the_mismatch() -> None:
    with pytest.raises(DeviceError) as error:
        granted_device([0], cuda_available=False, visible_devices="0")
    message = str(error.value)
    assert "granted GPU 0" in message and "refusing to train on CPU" in message
    assert torch.__version__ in message
    if torch.version.cuda is None:
        assert "CPU-only build" in message
    else:
        assert f"built for CUDA {torch.version.cuda}" in message and "NVIDIA driver >=" in message
        assert "--index-url https://download.pytorch.org/whl/cu" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch cannot use CUDA")
def test_asking_for_cuda_without_it_names_the_reason() -> None:
    with pytest.raises(DeviceError, match="device 'cuda:0' requested but torch"):
        select_device("cuda:0", None)


def test_precision_is_bf16_on_cuda_and_float32_on_cpu() -> None:
    assert precision_name("cpu") == "float32"
    assert precision_name("cuda:0") == "bfloat16"
