"""MemoryConfig (how weights are stored) and the registered fault layouts."""
import json

import pytest
import torch
from torch import nn

from characterization import DEFAULT_TECH
from sramsim import Deployment, MemoryConfig, layouts
from sramsim.array import ArrayGeometry
from sramsim.memory import split_memory


def test_defaults_describe_and_replace():
    memory = MemoryConfig()
    assert (memory.bits, memory.storage, memory.tech, memory.fault_model, memory.layout) == \
        (8, "symmetric", DEFAULT_TECH, "stuck-at", "arrays")
    assert memory.describe() == f"8-bit symmetric, stuck-at, arrays, {DEFAULT_TECH}"
    robust = memory.replace(bits=4, storage="robust", fault_model="flip")
    assert robust.describe() == f"4-bit robust, flip, arrays, {DEFAULT_TECH}" and memory.bits == 8
    with pytest.raises(Exception):
        memory.bits = 4   # frozen


def test_dict_round_trip_fills_old_records_and_refuses_unknown_keys():
    memory = MemoryConfig(bits=6, storage="robust", fault_model="flip")
    assert MemoryConfig.from_dict(json.loads(json.dumps(memory.to_dict()))) == memory
    assert MemoryConfig.from_dict({"bits": 6}) == MemoryConfig(bits=6)   # a record from before storage
    with pytest.raises(ValueError, match=r"unknown memory-config keys \['colour'\]: use bits, storage"):
        MemoryConfig.from_dict({"bits": 6, "colour": "red"})


def test_records_give_the_config_as_one_dict_or_as_the_flat_keys_of_older_versions():
    memory = MemoryConfig(bits=6, storage="robust", layout="arrays")
    assert split_memory({"memory": memory.to_dict(), "epochs": 3}) == (memory, {"epochs": 3})
    assert split_memory({"memory": memory, "epochs": 3}) == (memory, {"epochs": 3})
    old = {"bits": 6, "fault_model": "flip", "tech": DEFAULT_TECH, "layout": "arrays",
           "ber": 0.01}
    assert MemoryConfig.from_record(old) == MemoryConfig(bits=6, fault_model="flip")   # symmetric: no storage then
    assert MemoryConfig.from_record({"arch": "vgg11"}) == MemoryConfig()
    with pytest.raises(ValueError, match="as memory= or as bits, not both"):
        split_memory({"memory": {"bits": 6}, "bits": 4})
    assert memory.replace(bits=None, storage="symmetric") == MemoryConfig(bits=6)   # None: not given


@pytest.mark.parametrize("field, value, message", [
    ("bits", 9, "bits=9 is not valid: use an integer from 2 to 8"),
    ("storage", "asym", "unknown storage format 'asym': use one of symmetric, robust"),
    ("tech", "3nm", "unknown technology '3nm'"),
    ("fault_model", "bitflip", "unknown fault model 'bitflip': use one of stuck-at, flip"),
    ("layout", "rows", "unknown layout 'rows': use one of arrays, neuralfuse-code"),
])
def test_each_bad_field_gets_a_one_line_error_naming_it(field, value, message):
    with pytest.raises(ValueError, match=message) as err:
        MemoryConfig(**{field: value})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="8-bit weights only; got bits=4"):
        MemoryConfig(bits=4, layout="neuralfuse-code")


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def test_deployment_takes_a_memory_config_or_its_shorthands():
    memory = MemoryConfig(bits=4, fault_model="flip")
    by_config, by_keywords = Deployment(model(), memory=memory), Deployment(model(), bits=4, fault_model="flip")
    assert by_config.memory == by_keywords.memory == memory
    assert (by_config.bits, by_config.fault_model, by_config.layout_name) == (4, "flip", "arrays")
    assert by_config.report(ber=0.05, chip=2) == by_keywords.report(ber=0.05, chip=2)
    assert Deployment(model()).memory == MemoryConfig()
    with pytest.raises(ValueError, match="give memory= or the shorthands .*not both.*bits=4"):
        Deployment(model(), bits=4, memory=memory)


def test_layouts_are_registered_objects():
    code = layouts.get("neuralfuse-code")
    assert layouts.LAYOUTS == ("arrays", "neuralfuse-code") and layouts.DEFAULT_LAYOUT == "arrays"
    assert code.shared_map and code.own_geometry == layouts.MAP_GEOMETRY and code.word_bits == 8
    assert layouts.get("arrays").geometry(ArrayGeometry(64, 64)) == ArrayGeometry(64, 64)
    with pytest.raises(ValueError, match="do not give a geometry"):
        code.geometry(ArrayGeometry(64, 64))
    with pytest.raises(ValueError, match="unknown layout 'rows'"):
        layouts.get("rows")
    with pytest.raises(ValueError, match="already registered"):
        layouts.register(code)
    report = Deployment(model(), layout="neuralfuse-code").report(ber=0.01, chip=0)
    assert (report["array_rows"], report["array_cols"], report["arrays"]) == (8192, 128, 1)
