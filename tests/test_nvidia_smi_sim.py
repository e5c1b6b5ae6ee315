"""Tests for sim/host/nvidia-smi, the SIMULATED nvidia-smi of a GB10 (DGX Spark)."""

import csv
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

SMI = Path(__file__).resolve().parents[1] / "sim" / "host" / "nvidia-smi"
ALL_FIELDS = ("name,driver_version,memory.total,memory.used,memory.free,uuid,index,pci.bus_id,"
              "compute_cap,count,temperature.gpu,utilization.gpu,power.draw")


def smi(*args, env=None, **kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NVIDIA_SIM_")}
    e["NVIDIA_SIM_SMI_CONFIG"] = "/nonexistent/smi.json"  # ignore any machine-wide knob file
    e.update(env or {})
    return subprocess.run([str(SMI), *args], capture_output=True, text=True, env=e, timeout=30, **kw)


def query(fields, fmt="csv", env=None):
    r = smi("--query-gpu=" + fields, "--format=" + fmt, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return list(csv.reader(io.StringIO(r.stdout), skipinitialspace=True))


def test_table():
    r = smi()
    assert r.returncode == 0
    out = r.stdout
    assert re.search(r"NVIDIA-SMI 580\.95\.05\s+Driver Version: 580\.95\.05\s+CUDA Version: 13\.0", out)
    assert "SIMULATED" in out
    assert "NVIDIA GB10" in out and "0000000F:01:00.0" in out
    assert "Not Supported" in out  # unified memory: no VRAM figure, like the real GB10
    box = [line for line in out.splitlines() if line.startswith(("|", "+"))]
    assert box and all(len(line) == 91 for line in box)


def test_list_gpus():
    r = smi("-L")
    assert r.returncode == 0
    m = re.fullmatch(r"GPU 0: NVIDIA GB10 \(UUID: (GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)\n",
                     r.stdout)
    assert m
    assert query("uuid", "csv,noheader") == [[m.group(1)]]
    assert smi("--list-gpus").stdout == r.stdout


def test_query_all_fields_with_header_and_units():
    rows = query(ALL_FIELDS)
    assert rows[0] == ["name", "driver_version", "memory.total [MiB]", "memory.used [MiB]",
                       "memory.free [MiB]", "uuid", "index", "pci.bus_id", "compute_cap", "count",
                       "temperature.gpu", "utilization.gpu [%]", "power.draw [W]"]
    v = dict(zip(ALL_FIELDS.split(","), rows[1]))
    assert len(rows) == 2
    assert v["name"] == "NVIDIA GB10"
    assert v["driver_version"] == "580.95.05"
    assert v["compute_cap"] == "12.1"
    assert v["index"] == "0" and v["count"] == "1"
    assert v["pci.bus_id"] == "0000000F:01:00.0"
    assert v["memory.total"] == v["memory.used"] == v["memory.free"] == "[N/A]"
    assert v["utilization.gpu"] == "0 %"
    assert re.fullmatch(r"\d+\.\d\d W", v["power.draw"])
    assert re.fullmatch(r"\d+", v["temperature.gpu"])
    assert "SIMULATED" not in rows[1]  # CSV values stay clean for parsers


def test_noheader_nounits_in_any_order():
    assert query("name,utilization.gpu,power.draw", "csv,noheader,nounits")[0][:2] == ["NVIDIA GB10", "0"]
    rows = query("compute_cap,driver_version", "csv,nounits,noheader")
    assert rows == [["12.1", "580.95.05"]]
    rows = query("utilization.gpu", "csv,nounits")
    assert rows == [["utilization.gpu [%]"], ["0"]]
    r = smi("--query-gpu", "name", "--format", "csv,noheader")  # space-separated values
    assert r.returncode == 0 and r.stdout == "NVIDIA GB10\n"
    assert query("gpu_name,gpu_bus_id", "csv,noheader") == [["NVIDIA GB10", "0000000F:01:00.0"]]


def test_numeric_memory_knob():
    rows = query("memory.total,memory.used,memory.free", "csv,noheader,nounits",
                 env={"NVIDIA_SIM_SMI_MEMORY_MIB": "122502"})
    assert rows == [["122502", "0", "122502"]]
    rows = query("memory.total", "csv", env={"NVIDIA_SIM_SMI_MEMORY_MIB": "122502"})
    assert rows == [["memory.total [MiB]"], ["122502 MiB"]]
    assert "122502MiB" in smi(env={"NVIDIA_SIM_SMI_MEMORY_MIB": "122502"}).stdout


def test_unknown_field_fails_like_the_real_one():
    r = smi("--query-gpu=name,x", "--format=csv")
    assert r.returncode == 2
    assert 'Field "x" is not a valid field to query.' in r.stdout
    assert "NVIDIA GB10" not in r.stdout


def test_bad_invocations():
    assert smi("--query-gpu=name").returncode == 2  # no --format
    assert smi("--query-gpu=name", "--format=xml").returncode == 2
    r = smi("--frobnicate")
    assert r.returncode == 2 and "Invalid combination of input arguments" in r.stdout
    assert smi("-i", "0", "--query-gpu=index", "--format=csv,noheader").stdout == "0\n"
    assert smi("-i", "1", "-L").returncode != 0


def test_version():
    r = smi("--version")
    assert r.returncode == 0
    assert re.search(r"^NVIDIA-SMI version\s*: 580\.95\.05$", r.stdout, re.M)
    assert re.search(r"^DRIVER version\s*: 580\.95\.05$", r.stdout, re.M)
    assert re.search(r"^CUDA Version\s*: 13\.0$", r.stdout, re.M)
    assert "SIMULATED" in r.stdout


def test_driver_failure_knob_env_and_file(tmp_path):
    for args in ((), ("-L",), ("--query-gpu=name", "--format=csv")):
        r = smi(*args, env={"NVIDIA_SIM_SMI_FAIL": "1"})
        assert r.returncode == 9
        assert r.stdout.startswith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    cfg = tmp_path / "smi.json"
    cfg.write_text(json.dumps({"fail": True}))
    assert smi("-L", env={"NVIDIA_SIM_SMI_CONFIG": str(cfg)}).returncode == 9
    cfg.write_text(json.dumps({"driver_version": "575.51.03", "cuda_version": "12.9",
                               "uuid": "GPU-11111111-2222-3333-4444-555555555555"}))
    rows = query("driver_version,uuid", "csv,noheader", env={"NVIDIA_SIM_SMI_CONFIG": str(cfg)})
    assert rows == [["575.51.03", "GPU-11111111-2222-3333-4444-555555555555"]]
    assert "CUDA Version: 12.9" in smi(env={"NVIDIA_SIM_SMI_CONFIG": str(cfg)}).stdout
    # the environment wins over the file
    assert smi("-L", env={"NVIDIA_SIM_SMI_CONFIG": str(cfg), "NVIDIA_SIM_SMI_FAIL": "0"}).returncode == 0


@pytest.mark.parametrize("args", [("-q",), ("--query-compute-apps=pid,used_memory", "--format=csv")])
def test_other_queries(args):
    r = smi(*args)
    assert r.returncode == 0
    if args[0] == "-q":
        assert "NVIDIA GB10" in r.stdout and "SIMULATED" in r.stdout
    else:
        assert r.stdout == "pid, used_memory [MiB]\n"


def test_runs_with_plain_python3_stdlib():
    # the sim hosts have python3 but no pip packages: run with isolated mode and no site
    r = subprocess.run(["python3", "-I", "-S", str(SMI), "-L"], capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ["PATH"], "NVIDIA_SIM_SMI_CONFIG": "/nonexistent"})
    assert r.returncode == 0 and r.stdout.startswith("GPU 0: NVIDIA GB10")
