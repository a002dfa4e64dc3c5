import os

import torch

from carseg_hf.device_info import cpu_model_name, describe_device


def test_cpu_model_name_reads_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t: fpu\n")
    assert cpu_model_name(cpuinfo) == "AMD EPYC 9B14"


def test_cpu_model_name_falls_back_without_cpuinfo(tmp_path):
    name = cpu_model_name(tmp_path / "missing")
    assert isinstance(name, str) and name


def test_describe_cpu_names_isa_cores_and_threads():
    line = describe_device("cpu")
    assert f"ISA {torch.backends.cpu.get_cpu_capability()}" in line
    assert f"{os.cpu_count()} logical cores" in line
    assert f"{torch.get_num_threads()} torch threads" in line


def test_bf16_probe_agrees_with_onednn_and_the_isa():
    from carseg_hf.device_info import cpu_bf16_is_native

    native = cpu_bf16_is_native()
    assert native == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2"):
        assert not native  # bf16 instructions need an AVX-512 (or AMX) CPU


def test_bf16_warning_only_where_bf16_is_emulated(monkeypatch):
    import carseg_hf.device_info as device_info

    monkeypatch.setattr(device_info, "cpu_bf16_is_native", lambda: True)  # simulate an AVX512-BF16 host
    assert device_info.cpu_bf16_warning() is None
    monkeypatch.setattr(device_info, "cpu_bf16_is_native", lambda: False)  # simulate an AVX2-only host
    warning = device_info.cpu_bf16_warning()
    assert "emulated" in warning and "--mixed_precision no" in warning and "--dtype fp32" in warning
    assert f"ISA {torch.backends.cpu.get_cpu_capability()}" in warning
