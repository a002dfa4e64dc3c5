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
