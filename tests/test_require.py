"""``SLMBENCH_REQUIRE`` turns the matching skips into failures, and leaves the others alone."""

from __future__ import annotations

import pytest

INNER = '''
import pytest
from require import cuda_or_skip, import_or_skip, skip_unless


def test_gpu():
    skip_unless("gpu", False, "needs CUDA")


def test_vllm():
    import_or_skip("slmbench_no_such_engine", "vllm")


def test_data():
    skip_unless("data", False, "no data here")


def test_runs():
    skip_unless("gptq", True, "never shown")
'''

MODULE_LEVEL = '''
from require import import_or_skip

import_or_skip("slmbench_no_such_engine", "vllm")


def test_never_reached():
    pass
'''


def _run(pytester, monkeypatch, require: str | None, source: str = INNER):
    if require is None:
        monkeypatch.delenv("SLMBENCH_REQUIRE", raising=False)
    else:
        monkeypatch.setenv("SLMBENCH_REQUIRE", require)
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest("-p", "no:cacheprovider", "-rsf")


def test_without_requirements_everything_missing_skips(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, None)
    result.assert_outcomes(passed=1, skipped=3)


def test_a_required_kind_fails_with_its_reason_and_the_others_still_skip(pytester,
                                                                         monkeypatch):
    result = _run(pytester, monkeypatch, "gpu, data")
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines([
        "needs CUDA; SLMBENCH_REQUIRE requires gpu (a CUDA GPU*",
        "no data here; SLMBENCH_REQUIRE requires data (the real benchmark data*",
    ])
    assert result.ret != 0


def test_a_required_module_level_import_fails_the_collection(pytester, monkeypatch):
    assert _run(pytester, monkeypatch, None, MODULE_LEVEL).ret == 5  # all skipped: none ran
    result = _run(pytester, monkeypatch, "vllm", MODULE_LEVEL)
    assert result.ret not in (0, 5)
    result.stdout.fnmatch_lines(["*slmbench_no_such_engine is not importable*requires vllm*"])


def test_an_unknown_requirement_is_one_usage_error(monkeypatch):
    from require import required

    monkeypatch.setenv("SLMBENCH_REQUIRE", "gpu,gpus")
    with pytest.raises(pytest.UsageError, match=r"SLMBENCH_REQUIRE=gpu,gpus: unknown "
                                                r"requirement 'gpus' \(known: gpu, vllm"):
        required()


def test_shared_data_or_skip_fails_under_require_data(tmp_path, monkeypatch):
    import conftest

    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path)
    monkeypatch.delenv("SLMBENCH_REQUIRE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest.shared_data_or_skip()
    monkeypatch.setenv("SLMBENCH_REQUIRE", "data")
    with pytest.raises(pytest.fail.Exception, match="TeleQnA.txt is absent; SLMBENCH_REQUIRE"):
        conftest.shared_data_or_skip()


def test_the_data_dir_comes_from_slmbench_data_dir(tmp_path, monkeypatch):
    import conftest

    monkeypatch.setenv("SLMBENCH_DATA_DIR", str(tmp_path))
    assert conftest._shared_data() == tmp_path.resolve()
    monkeypatch.delenv("SLMBENCH_DATA_DIR")
    assert conftest._shared_data().parts[-2:] == ("shared", "data")
