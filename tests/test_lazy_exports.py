import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("package", "name", "module"),
    [
        ("carseg_hf", "CarSegConfig", "carseg_hf.configuration_carseg"),
        ("carseg_hf.predict", "PredictOptions", "carseg_hf.predict.options"),
        ("carseg_hf.training", "main", "carseg_hf.training.trainer"),
    ],
)
def test_a_public_name_loads_its_submodule_on_first_access_only(package, name, module):
    code = (
        "import importlib, sys\n"
        f"package = importlib.import_module({package!r})\n"
        f"assert {module!r} not in sys.modules, 'loaded too early'\n"
        f"assert {name!r} in dir(package)\n"
        f"value = getattr(package, {name!r})\n"
        f"assert {module!r} in sys.modules and value is getattr(sys.modules[{module!r}], {name!r})\n"
        f"assert vars(package)[{name!r}] is value  # cached: later accesses skip __getattr__\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    import carseg_hf.predict

    with pytest.raises(AttributeError, match="module 'carseg_hf.predict' has no attribute 'BatchPredicter'"):
        carseg_hf.predict.BatchPredicter  # noqa: B018
