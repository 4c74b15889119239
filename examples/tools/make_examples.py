"""Generate the data files of examples/projects/* (seeded: the same files every run).

    .venv/bin/python examples/tools/make_examples.py

Texts are composed from hand-written pieces (sentiment_text.py and the pools below), never a
template with one word swapped; character offsets are computed while a text is built, never
counted by hand. The files are committed; run this again only to change them.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import sentiment_text as S

HERE = Path(__file__).resolve().parent
PROJECTS = HERE.parent / "projects"


class Text:
    """A text under construction that remembers the spans of the entities put into it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[dict] = []

    def add(self, text: str, label: str | None = None) -> Text:
        if label is not None:
            self.spans.append({"start": self.length, "end": self.length + len(text), "label": label})
        self.parts.append(text)
        self.length += len(text)
        return self

    def fill(self, template: str, values: dict[str, tuple[str, str]]) -> Text:
        """Append ``template`` with ``{slot}`` replaced by (text, label) values."""
        rest = template
        while "{" in rest:
            before, _, after = rest.partition("{")
            slot, _, rest = after.partition("}")
            self.add(before)
            text, label = values[slot]
            self.add(text, label)
        return self.add(rest)

    def __str__(self) -> str:
        return "".join(self.parts)


# ----------------------------------------------------------------- 1. sentiment


def sentiment_rows(rng: random.Random, n: int = 200) -> list[dict]:
    pools = {"positive": (S.POSITIVE, S.POSITIVE_CLOSERS),
             "negative": (S.NEGATIVE, S.NEGATIVE_CLOSERS),
             "neutral": (S.NEUTRAL, S.NEUTRAL_CLOSERS)}
    rows = []
    for i in range(n):
        label = rng.choice(["positive", "negative", "neutral"])
        cores, closers = pools[label]
        org = rng.choice(S.ORGS)
        product, product_label = rng.choice(S.PRODUCTS)
        t = Text()
        opener = rng.choice(S.OPENERS)
        if opener:
            t.fill(opener.replace("{o}", "{o}") + " ", {"o": (org, "ORG")})
        picked = rng.sample(cores, k=rng.choice([1, 1, 2]))
        for j, core in enumerate(picked):
            if j:
                t.add(" ")
            if core.startswith("{P}"):
                t.fill("{p}" + core[3:], {"p": (product[0].upper() + product[1:], product_label)})
            else:
                t.fill(core, {"p": (product, product_label)})
        closer = rng.choice(closers)
        if closer:
            t.add(" " + closer)
        labelled = rng.random() < 0.75
        rows.append({
            "text": str(t),
            "sentiment": label if labelled else None,
            "external_id": 1233456432354 + i * 7,
            "entities": t.spans or None,
        })
    return rows


# ----------------------------------------------------------------- 2. multilabel

TOPICS = {
    "billing": [
        "I was charged twice for the same order.",
        "My invoice shows the wrong VAT amount.",
        "Why did my monthly fee go up without notice?",
        "The discount code was not applied at checkout.",
        "Please send a corrected receipt for my expenses.",
        "My card was declined although it has enough funds.",
    ],
    "shipping": [
        "The parcel has been stuck in transit for nine days.",
        "Tracking says delivered but nothing arrived.",
        "Can you ship to a pick-up point instead of my home address?",
        "The courier left the box outside in the rain.",
        "Express delivery took longer than standard would have.",
        "Only half of my order arrived.",
    ],
    "returns": [
        "I'd like to return the jacket, it's too small.",
        "The return label in the box has the wrong address.",
        "How long does a refund take once you receive the item?",
        "You received my return two weeks ago and I have heard nothing.",
        "Can I exchange the shoes for a bigger size instead of a refund?",
    ],
    "account": [
        "I can't log in, the reset e-mail never arrives.",
        "Please delete my account and all my data.",
        "Someone changed the e-mail address on my account.",
        "How do I add my partner as a second user?",
        "Two-factor codes are not reaching my phone.",
    ],
    "technical": [
        "The app crashes as soon as I open the basket.",
        "The device won't pair over Bluetooth any more.",
        "After the firmware update the screen stays black.",
        "The website shows an error 500 at payment.",
        "Notifications stopped working on Android.",
    ],
    "product_question": [
        "Is the blender's jug dishwasher safe?",
        "What is the difference between the Pro and the Lite model?",
        "Does the lamp work with a dimmer switch?",
        "Which charger do I need for fast charging?",
        "Is the fabric suitable for outdoor use?",
    ],
}
SUBJECTS = {
    "billing": ["Charged twice", "Invoice question", "Wrong amount", "Payment problem"],
    "shipping": ["Where is my order?", "Delivery issue", "Missing parcel", "Late delivery"],
    "returns": ["Return request", "Refund status", "Exchange please"],
    "account": ["Login problem", "Account help", "Delete my account"],
    "technical": ["App not working", "Bug report", "Device problem"],
    "product_question": ["Question about a product", "Before I buy", "Compatibility"],
}


def multilabel_rows(rng: random.Random, n: int = 80) -> list[dict]:
    rows = []
    for i in range(n):
        topics = rng.sample(sorted(TOPICS), k=rng.choice([1, 1, 2, 2, 3]))
        sentences = [rng.choice(TOPICS[t]) for t in topics]
        greeting = rng.choice(["Hello,", "Hi there,", "Dear support,", "", ""])
        sign = rng.choice(["Thanks, Maria", "Regards, Tom", "Best, J. Okafor", "Thank you.", ""])
        body = " ".join(x for x in [greeting, *sentences, sign] if x)
        rows.append({
            "ticket_id": f"T-{20240 + i * 3}",
            "subject": rng.choice(SUBJECTS[topics[0]]),
            "body": body,
            "channel": rng.choice(["email", "web", "phone"]),
        })
    return rows


# ----------------------------------------------------------------- 3. entities

PERSONS = ["Maria Lopez", "Tim Cook", "Angela Merkel", "Satya Nadella", "Priya Raman",
           "Jonas Berg", "Chen Wei", "Fatima Al-Sayed", "Olivier Martin", "Kenji Watanabe",
           "Sofia Rossi", "David Okafor", "Emma Johansson", "Luis Fernández", "Anna Nowak",
           "Tomás Silva", "Grace Kim", "Ahmed Hassan", "Lena Fischer", "Marco Bianchi"]
ORGS = ["Apple", "Amazon", "Siemens", "the World Health Organization", "Airbus", "Unilever",
        "Spotify", "the European Central Bank", "Toyota", "Nestlé", "Reuters", "Vodafone",
        "Samsung", "IKEA", "Deutsche Bahn", "Microsoft", "the BBC", "Shell", "Philips", "Zara"]
LOCS = ["Berlin", "Lagos", "São Paulo", "Tokyo", "Nairobi", "Lyon", "Toronto", "Mumbai",
        "Madrid", "Oslo", "Cape Town", "Seoul", "Chicago", "Lisbon", "Warsaw", "Melbourne",
        "Dublin", "Istanbul", "Mexico City", "Helsinki"]
PRODUCTS = ["iPhone 15", "Kindle Paperwhite", "PlayStation 5", "Model Y", "Galaxy S24",
            "Surface Laptop", "Billy bookcase", "AirPods Pro", "Pixel 8", "Prius",
            "ThinkPad X1", "Echo Dot", "Nintendo Switch", "Vision Pro", "Roomba"]
ENTITY_TEMPLATES = [
    "{person} from {org} said the {product} will ship to {loc} in March.",
    "{org} opened a new office in {loc} on Monday.",
    "Customers in {loc} report that the {product} overheats while charging.",
    "{person} will lead {org}'s operations in {loc} from next year.",
    "In an interview, {person} called the {product} the company's most important launch.",
    "{org} and {org2} are in talks about a joint venture, sources in {loc} said.",
    "The {product} sold out within hours in {loc}, {org} confirmed.",
    "{person} left {org} after eleven years to join {org2}.",
    "Shares of {org} fell 4% after a recall of the {product}.",
    "A spokesperson for {org} declined to comment on the reports from {loc}.",
    "{person} and {person2} met in {loc} to sign the agreement.",
    "The {product} is now available in {loc} and {loc2}.",
    "{org} hired {person} as its new chief technology officer.",
    "Flooding in {loc} delayed deliveries of the {product} by two weeks.",
    "Regulators in {loc} fined {org} for misleading adverts about the {product}.",
    "{person}, who founded the start-up in {loc}, sold it to {org}.",
    "According to {org}, demand for the {product} doubled last quarter.",
    "Hi {org}, my {product} arrived damaged, can you help?",
    "I bought the {product} in {loc} but the warranty isn't recognised here.",
    "{person} reviewed the {product} and praised its battery life.",
    "Thanks to {person} at the {loc} store for fixing my {product}.",
    "{org} is moving its headquarters from {loc} to {loc2}.",
    "Workers at {org}'s plant near {loc} went on strike on Friday.",
    "The {product} will not be sold in {loc}, {person} told reporters.",
    "After meeting {person}, the mayor of {loc} praised {org}'s investment.",
    "Why does my {product} keep restarting? {org} support could not say.",
    "{org} announced that {person} will step down as chair.",
    "Tourists in {loc} queued for hours to buy the {product}.",
    "{person} wrote that {org} had ignored safety warnings in {loc}.",
    "{org2} beat {org} to the contract for new trains in {loc}.",
]


def entity_rows(rng: random.Random, n: int = 150) -> list[dict]:
    rows = []
    for i in range(n):
        template = ENTITY_TEMPLATES[i % len(ENTITY_TEMPLATES)] if i < len(ENTITY_TEMPLATES) \
            else rng.choice(ENTITY_TEMPLATES)
        person, person2 = rng.sample(PERSONS, 2)
        org, org2 = rng.sample(ORGS, 2)
        loc, loc2 = rng.sample(LOCS, 2)
        values = {"person": (person, "PERSON"), "person2": (person2, "PERSON"),
                  "org": (org, "ORG"), "org2": (org2, "ORG"),
                  "loc": (loc, "LOC"), "loc2": (loc2, "LOC"),
                  "product": (rng.choice(PRODUCTS), "PRODUCT")}
        t = Text().fill(template, values)
        if str(t)[0].islower():  # "the World Health Organization ..." at the start
            first = t.parts[0] or t.parts[1]
            index = 0 if t.parts[0] else 1
            t.parts[index] = first[0].upper() + first[1:]
        text = str(t)
        for span in t.spans:  # self-check: offsets point at the entity text
            assert 0 <= span["start"] < span["end"] <= len(text)
        rows.append({
            "snippet_id": f"news-{1000 + i}",
            "text": text,
            "source": rng.choice(["newswire", "support", "blog"]),
            "entities": t.spans if rng.random() < 0.8 else None,
        })
    return rows


# ----------------------------------------------------------------- 4. two datasets

INTENTS = {
    "cancel": ["Please cancel my subscription from next month.",
               "I want to cancel order {n}, I ordered the wrong size.",
               "How do I stop the automatic renewal?",
               "Cancel my membership please, I'm moving abroad."],
    "order_status": ["Where is order {n}? It's been a week.",
                     "Has my order {n} shipped yet?",
                     "The tracking link for {n} doesn't work.",
                     "When will order {n} arrive?"],
    "complaint": ["The item I received is scratched and the box was open.",
                  "Your courier was rude and threw the parcel over the fence.",
                  "I've been overcharged and nobody replies to my e-mails.",
                  "The product broke after two days, this is unacceptable."],
    "question": ["Do you offer student discounts?",
                 "Can I change the delivery address after ordering?",
                 "Is the blue version coming back?",
                 "Do your prices include VAT?"],
    "praise": ["Just wanted to say the new app is great, well done.",
               "Your colleague Sam was so helpful yesterday, thank you!",
               "Fast delivery and lovely packaging, thanks a lot.",
               "Best customer service I've had in years."],
}
AGENTS = ["Sam", "Priya", "Lukas", "Aiko", "Bongani", "Claire"]


def email_rows(rng: random.Random, n: int = 60) -> list[dict]:
    rows = []
    for i in range(n):
        intent = rng.choice(sorted(INTENTS))
        line = rng.choice(INTENTS[intent]).replace("{n}", f"#{48000 + rng.randrange(999)}")
        extra = rng.choice(INTENTS[intent]).replace("{n}", f"#{48000 + rng.randrange(999)}")
        body = " ".join([rng.choice(["Hello,", "Hi,", "Dear team,"]), line,
                         extra if rng.random() < 0.4 and extra != line else "",
                         rng.choice(["Thanks", "Regards", "Best wishes"])]).replace("  ", " ")
        rows.append({
            "message_id": f"<{rng.getrandbits(40):010x}@mail.example.com>",
            "subject": rng.choice(["Order", "Question", "Help", "Feedback", "Re: your order",
                                   "Urgent"]),
            "body": body,
        })
    return rows


def chat_rows(rng: random.Random, n: int = 60) -> list[dict]:
    rows = []
    for i in range(n):
        intent = rng.choice(sorted(INTENTS))
        agent = rng.choice(AGENTS)
        ask = rng.choice(INTENTS[intent]).replace("{n}", f"#{48000 + rng.randrange(999)}")
        reply = rng.choice(["Let me check that for you.", "Sure, one moment.",
                            "I'm sorry to hear that, I'll look into it.",
                            "Thanks for your message!"])
        body = f"Customer: {ask}\n{agent}: {reply}"
        if rng.random() < 0.3:
            body += f"\nCustomer: {rng.choice(['Thanks.', 'OK, great.', 'Still waiting...'])}"
        rows.append({"chat_id": f"chat-{7000 + i}", "body": body, "agent": agent})
    return rows


# ----------------------------------------------------------------- write


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({k: v for k, v in row.items() if v is not None},
                               ensure_ascii=False) + "\n")


def write_json(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        for i, row in enumerate(rows):
            f.write("  " + json.dumps(row, ensure_ascii=False) + (",\n" if i < len(rows) - 1 else "\n"))
        f.write("]\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    write_jsonl(PROJECTS / "sentiment/data/tickets.jsonl", sentiment_rows(random.Random(4)))
    write_json(PROJECTS / "multilabel/data/tickets.json", multilabel_rows(random.Random(5)))
    write_jsonl(PROJECTS / "entities/data/snippets.jsonl", entity_rows(random.Random(6)))
    write_jsonl(PROJECTS / "two-datasets/data/emails.jsonl", email_rows(random.Random(7)))
    write_csv(PROJECTS / "two-datasets/data/chats.csv", chat_rows(random.Random(8)))


if __name__ == "__main__":
    main()
