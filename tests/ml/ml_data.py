"""Synthetic but realistic training data for the ML core (``hlops/server/ml.py``).

Generated from phrase pools with a seeded RNG, so every test sees the same rows. Texts are
composed (opener + one or two core sentences + closer, entity names from lists) so that
no two share a template, the words carry the label, and held-out rows contain
combinations never seen in training.
"""

from __future__ import annotations

import random

ORGS = ["Apple", "Amazon", "Samsung", "Sony", "IKEA", "Dyson", "Zalando", "Lufthansa",
        "Vodafone", "Philips", "Lenovo", "Garmin", "Spotify", "Tesco", "Nestlé", "Škoda"]
PRODUCTS = ["the headphones", "my kettle", "the standing desk", "this vacuum", "the phone case",
            "the running shoes", "the espresso machine", "my laptop", "the smart watch",
            "the baby monitor", "the bluetooth speaker", "the office chair", "the blender"]
POSITIVE = ["I love {p}, it works perfectly.", "{P} arrived early and works beautifully.",
            "Honestly the best purchase I've made this year.", "The sound quality is fantastic.",
            "Setup took two minutes and everything just worked.", "Great value for money.",
            "Really impressed with the build quality.", "Five stars, {p} exceeded my expectations.",
            "Brilliant customer service, thank you!", "Wonderful experience from order to delivery.",
            "I'm thrilled with how well it performs.", "Lovely design, so light and quiet."]
NEGATIVE = ["The sound quality of {p} was so disappointing.", "{P} stopped working after three days.",
            "Still no refund after two weeks, this is unacceptable.", "Terrible experience, nobody answers.",
            "It arrived broken and the box was soaking wet.", "Total waste of money.",
            "Worst customer service I have ever dealt with.", "Cheaply made, the buttons feel loose.",
            "I regret buying {p}, it's a disaster.", "The app keeps crashing, I'm furious.",
            "Awful, it's loud and slow.", "Such a letdown after all the good reviews."]
NEUTRAL = ["Hi, please can you refund {p}?", "When will {p} be back in stock?",
           "What is the tracking number for {p}?", "Does {p} come with a UK plug?",
           "Please update the delivery address on my order.", "What are your opening hours?",
           "Is {p} compatible with older models?", "How do I reset my password?",
           "I need an invoice with my VAT number.", "Can the delivery be left with a neighbour?",
           "Is it possible to pay in instalments?", "Could you send me the manual as a PDF?"]
OPENERS = ["Hi {o},", "Hello,", "Dear {o} team,", "Hey {o}!", "", "", ""]


def make_sentiment(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    pools = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(sorted(pools))
        p = rng.choice(PRODUCTS)
        parts = [rng.choice(OPENERS).format(o=rng.choice(ORGS))]
        for core in rng.sample(pools[label], k=rng.choice([1, 1, 2])):
            parts.append(core.format(p=p, P=p[0].upper() + p[1:]))
        texts.append(" ".join(x for x in parts if x))
        labels.append(label)
    return texts, labels


TOPICS = {
    "billing": ["I was charged twice for the same order.", "My invoice shows the wrong amount.",
                "Why did the price change at checkout?", "The payment failed but money left my account."],
    "shipping": ["My parcel has not arrived yet.", "The tracking page has not updated in days.",
                 "The courier left the package in the rain.", "Can you deliver to my office instead?"],
    "returns": ["I would like to return the shoes.", "How do I print a return label?",
                "Can I exchange this for a bigger size?", "The return window has closed, can I still send it back?"],
    "account": ["I can't log in to my account.", "The password reset e-mail never arrives.",
                "Please delete my personal data.", "How do I add a second user?"],
}


def make_tickets(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(seed)
    texts, targets = [], []
    for _ in range(n):
        k = rng.choice([1, 1, 1, 2, 2, 3])
        topics = sorted(rng.sample(sorted(TOPICS), k))
        sentences = [rng.choice(TOPICS[t]) for t in topics]
        rng.shuffle(sentences)
        texts.append(" ".join([rng.choice(["Hello,", "Hi there,", ""])] + sentences).strip())
        targets.append(topics)
    return texts, targets


PERSONS = ["Maria Lopez", "Tim Cook", "Priya Raman", "Jonas Berg", "Chen Wei", "Fatima Al-Sayed",
           "Olivier Martin", "Kenji Watanabe", "Sofia Rossi", "David Okafor", "Luis Fernández",
           "Anna Nowak", "Grace Kim", "Ahmed Hassan", "Lena Fischer", "Marco Bianchi",
           "Ines Duarte", "Pavel Novak", "Aisha Bello", "Tomás Silva"]
ENT_ORGS = ["Apple", "Siemens", "Airbus", "Unilever", "Spotify", "Toyota", "Nestlé", "Reuters",
            "Vodafone", "Samsung", "Microsoft", "Philips", "Zara", "Deutsche Bahn", "Shell", "Nokia"]
LOCS = ["Berlin", "Lagos", "São Paulo", "Tokyo", "Nairobi", "Lyon", "Toronto", "Mumbai", "Madrid",
        "Oslo", "Cape Town", "Seoul", "Chicago", "Lisbon", "Warsaw", "Dublin", "Istanbul", "Helsinki"]
TEMPLATES = [
    "{PERSON} from {ORG} said the launch in {LOC} went well.",
    "{ORG} opened a new office in {LOC} on Monday.",
    "{PERSON} will lead {ORG}'s operations in {LOC} from next year.",
    "A spokesperson for {ORG} declined to comment on the reports from {LOC}.",
    "{PERSON} met the mayor of {LOC} to discuss the plans.",
    "Shares of {ORG} fell 4% on Tuesday.",
    "{ORG} hired {PERSON} as its new chief technology officer.",
    "Flooding in {LOC} delayed deliveries by two weeks.",
    "According to {PERSON}, demand doubled last quarter.",
    "Workers at the {ORG} plant near {LOC} went on strike.",
    "The weather was mild and nothing much happened.",
]


def make_entities(n: int, seed: int = 0, persons=PERSONS, orgs=ENT_ORGS, locs=LOCS):
    """(texts, spans) of news-like sentences; spans ``{start, end, label}``."""
    rng = random.Random(seed)
    pools = {"PERSON": persons, "ORG": orgs, "LOC": locs}
    texts, targets = [], []
    for _ in range(n):
        template = rng.choice(TEMPLATES)
        text, spans, pos = "", [], 0
        while pos < len(template):
            start = template.find("{", pos)
            if start == -1:
                text += template[pos:]
                break
            end = template.index("}", start)
            text += template[pos:start]
            label = template[start + 1 : end]
            name = rng.choice(pools[label])
            spans.append({"start": len(text), "end": len(text) + len(name), "label": label})
            text += name
            pos = end + 1
        texts.append(text)
        targets.append(spans)
    return texts, targets
