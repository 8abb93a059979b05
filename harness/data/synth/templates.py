"""Phrase banks that the telecom generator combines into questions, answers and conversations.

Slots: ``{term}``, ``{definition}``, ``{cause}``, ``{symptom}`` (``{Symptom}`` capitalised),
``{fix}``, ``{customer}`` and ``{note}``, filled from a scenario (see ``glossary.py`` for
the grammatical form each glossary field must have). A layout lists which banks make up a
text, in order; the generator draws one phrase from each bank with a seeded RNG.
"""

from __future__ import annotations

OPENER = (
    "Hi.", "Hello.", "Hi there.", "Good morning.", "Good evening.", "Hey.",
    "Hello support team.", "Hi, hoping you can help.", "Hello, I need some help.",
)
CONTEXT = (
    "{customer}.", "Just so you know, {customer}.", "For context, {customer}.",
    "Some background: {customer}.", "I should mention that {customer}.",
    "In case it matters, {customer}.",
)
SYMPTOM = (
    "{Symptom}.", "The problem is that {symptom}.", "Since yesterday {symptom}.",
    "For a few days now {symptom}.", "Right now {symptom}.",
    "Here's what's going on: {symptom}.", "Ever since this morning {symptom}.",
    "I keep running into the same issue: {symptom}.",
)
HINT = (
    "Could it be that {cause}?", "I suspect {cause}.",
    "A friend told me it may be because {cause}.",
    "I'm wondering whether {cause}.", "My guess is that {cause}.",
    "Someone at the store said {cause}.", "Maybe {cause}?", "I read online that maybe {cause}.",
)
TERM_QUESTION = (
    "Is this related to {term}?", "Could this be related to {term}?",
    "Does it have anything to do with {term}?", "Is {term} the issue here?",
    "I'm guessing it's about {term}?", "Is this an issue with {term}?",
)
TERM_TOPIC = (
    "I have a question about {term}.", "I need help with {term}.", "This is about {term}.",
    "My question concerns {term}.", "I'm having trouble with {term}.",
)
ASK = (
    "What should I do?", "How can I fix this?", "Can you help me sort it out?",
    "What are my options?", "Please advise.", "How do I get this working again?",
    "What do you recommend?", "Is there a quick fix?",
)

GREET = (
    "Thanks for reaching out.", "Sorry to hear about the trouble.",
    "I'm sorry you're dealing with this.", "Thanks for the details.", "Happy to help with that.",
    "Thanks for contacting support.", "I understand how frustrating that is.",
)
DIAGNOSE = (
    "This usually happens when {cause}.", "From what you describe, it looks like {cause}.",
    "The most likely cause is that {cause}.",
    "In cases like this, the issue is usually that {cause}.",
    "What you're seeing is typical when {cause}.", "It sounds like {cause}.",
)
DEFINE = (
    "For background: {definition}", "A quick word on {term}: {definition}",
    "Some context on {term}: {definition}",
)
FIX = (
    "To fix it, {fix}.", "Here's what to do: {fix}.", "Please {fix}.", "Try this: {fix}.",
    "To sort it out, {fix}.", "The quickest way to resolve it is to {fix}.",
    "Here are the steps: {fix}.",
)
CLOSE = (
    "Let us know if that doesn't solve it.",
    "If the problem continues, reply here and we'll look into it further.", "Hope that helps!",
    "Is there anything else I can help with?",
    "If it still doesn't work, we can escalate it to our technical team.",
    "Feel free to get back to us if you need more help.",
)

CLARIFY = (
    "Could you check whether {cause}?", "One question first: is it possible that {cause}?",
    "Let's rule something out. Can you confirm whether {cause}?",
    "Before we go further, could you tell me whether {cause}?",
    "Can you take a look and see if {cause}?",
)
CONFIRM = (
    "Yes, it looks like {cause}.", "I just checked, and yes, {cause}.", "You're right, {cause}.",
    "Good call. It seems {cause}.", "Now that you mention it, {cause}.",
)
ACK = ("Thanks for confirming.", "That explains it.", "Great, that's the culprit.",
       "Thanks, that helps.", "Okay, that's what I suspected.")
THANKS = ("Thanks, that did it!", "Perfect, it works now.", "Great, that fixed it. Thank you!",
          "That worked, thanks a lot.")
GOODBYE = ("Glad it's sorted. Have a great day!", "You're welcome! Reach out any time.",
           "Great to hear. Enjoy the rest of your day!")

# Question layouts: every one names the term and hints at the cause, so that the question
# carries what the reference answer relies on.
QUESTION_LAYOUTS = (
    ("OPENER", "CONTEXT", "SYMPTOM", "HINT", "TERM_QUESTION", "ASK"),
    ("OPENER", "TERM_TOPIC", "SYMPTOM", "CONTEXT", "HINT", "ASK"),
    ("SYMPTOM", "HINT", "CONTEXT", "TERM_QUESTION", "ASK"),
    ("OPENER", "SYMPTOM", "TERM_QUESTION", "HINT", "CONTEXT", "ASK"),
    ("TERM_TOPIC", "CONTEXT", "SYMPTOM", "HINT", "ASK"),
    ("OPENER", "CONTEXT", "TERM_TOPIC", "SYMPTOM", "HINT"),
)
# A conversation's opening turn leaves the cause out: the agent asks about it.
OPENING_LAYOUTS = (
    ("OPENER", "CONTEXT", "SYMPTOM", "TERM_QUESTION"),
    ("OPENER", "TERM_TOPIC", "SYMPTOM", "CONTEXT", "ASK"),
    ("SYMPTOM", "CONTEXT", "TERM_QUESTION", "ASK"),
    ("TERM_TOPIC", "SYMPTOM", "CONTEXT", "ASK"),
)
# Answer layouts; DEFINE and NOTE are optional parts the generator may leave out.
ANSWER_LAYOUTS = (
    ("GREET", "DIAGNOSE", "DEFINE", "FIX", "NOTE", "CLOSE"),
    ("DIAGNOSE", "FIX", "NOTE", "CLOSE"),
    ("GREET", "DEFINE", "DIAGNOSE", "FIX", "NOTE"),
    ("GREET", "DIAGNOSE", "FIX", "NOTE", "CLOSE"),
)
RESOLUTION_LAYOUTS = (
    ("ACK", "FIX", "DEFINE", "NOTE", "CLOSE"),
    ("ACK", "DIAGNOSE", "FIX", "NOTE"),
    ("FIX", "NOTE", "CLOSE"),
)
OPTIONAL = {"DEFINE": 0.4, "NOTE": 0.6}

BANKS: dict[str, tuple[str, ...]] = {
    "OPENER": OPENER, "CONTEXT": CONTEXT, "SYMPTOM": SYMPTOM, "HINT": HINT,
    "TERM_QUESTION": TERM_QUESTION, "TERM_TOPIC": TERM_TOPIC, "ASK": ASK, "GREET": GREET,
    "DIAGNOSE": DIAGNOSE, "DEFINE": DEFINE, "FIX": FIX, "NOTE": ("{note}",), "CLOSE": CLOSE,
    "CLARIFY": CLARIFY, "CONFIRM": CONFIRM, "ACK": ACK, "THANKS": THANKS, "GOODBYE": GOODBYE,
}
