"""The benchmarks of the telecom suite and where each one's data comes from."""

from __future__ import annotations

from dataclasses import dataclass

from harness.data.records import Kind

HUB_DATASET = "GSMA/ot-full"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its task-folder name, its ``ot-full`` config and how it is scored."""

    name: str
    hub_config: str
    kind: Kind
    title: str
    # Generated offline by harness/data/synth (no Hub config); a local data dir may override.
    synthetic: bool = False
    # Source fields that give the answer away: dropped at import, so that no prompt, few-shot
    # example or training text built from a record can ever show them to the model.
    leaks_answer: tuple[str, ...] = ()


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("teleqna", "teleqna", "mcq", "TeleQnA"),
        Benchmark("sixg_bench", "sixg_bench", "mcq", "6G-Bench"),
        # file_name is the tdoc number, whose prefix names the working group (S4- is SA4).
        Benchmark("three_gpp_tsg", "3gpp_tsg", "label", "3GPP-TSG", leaks_answer=("file_name",)),
        Benchmark("oranbench", "oranbench", "mcq", "ORANBench"),
        Benchmark("srsranbench", "srsranbench", "mcq", "srsRANBench"),
        Benchmark("teletables", "teletables", "mcq", "TeleTables"),
        Benchmark("telemath", "telemath", "numeric", "TeleMath"),
        Benchmark("telelogs", "telelogs", "label", "TeleLogs"),
        Benchmark("ecommerce_intent", "ecommerce_intent", "label", "E-commerce intent",
                  synthetic=True),
        Benchmark("telecom_support", "telecom_support", "text", "Telecom support (synthetic)",
                  synthetic=True),
    )
}
