"""Maj@k: a majority vote over the k extracted answers of one question.

Tie rule: among the answers with the most votes, the one that appeared first in sample
order wins. Unparsed samples do not vote; if no sample parsed, the vote is unparsed.
The vote runs on raw per-question answers, never on scores averaged across samples (a
peer suite's bug that reported Maj@k = 0 when every answer was right).
"""

from __future__ import annotations

from collections import Counter

from harness.scoring.extract import UNPARSED_PREFIX, is_unparsed


def majority_vote(answers: list[str]) -> str:
    """The winning answer of one question's samples (already extracted)."""
    valid = [a for a in answers if not is_unparsed(a)]
    if not valid:
        return f"{UNPARSED_PREFIX}none of {len(answers)} samples parsed"
    counts = Counter(valid)
    top = max(counts.values())
    return next(a for a in valid if counts[a] == top)
