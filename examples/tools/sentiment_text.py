"""Hand-written sentence pools for the sentiment example (see make_examples.py).

Reviews and support messages are composed from these pieces, so that the words carry the
sentiment (a classifier can learn it) while no two texts share a template.
"""

PRODUCTS = [
    ("the wireless headphones", "PRODUCT"), ("my new kettle", "PRODUCT"),
    ("the standing desk", "PRODUCT"), ("this robot vacuum", "PRODUCT"),
    ("the phone case", "PRODUCT"), ("the running shoes", "PRODUCT"),
    ("the espresso machine", "PRODUCT"), ("my laptop", "PRODUCT"),
    ("the smart watch", "PRODUCT"), ("the winter jacket", "PRODUCT"),
    ("the baby monitor", "PRODUCT"), ("this air purifier", "PRODUCT"),
    ("the bluetooth speaker", "PRODUCT"), ("the office chair", "PRODUCT"),
    ("the e-reader", "PRODUCT"), ("the blender", "PRODUCT"),
]

ORGS = ["Apple", "Amazon", "Samsung", "Sony", "IKEA", "Dyson", "Zalando", "Deliveroo",
        "Lufthansa", "Vodafone", "Decathlon", "Philips", "Lenovo", "Nespresso", "Garmin",
        "Booking.com", "Spotify", "Uber", "Airbnb", "Tesco"]

POSITIVE = [
    "I love {p}, it works perfectly.",
    "{P} arrived a day early and works beautifully.",
    "Honestly the best purchase I've made this year.",
    "The sound quality is fantastic and the battery lasts for days.",
    "Setup took two minutes and everything just worked.",
    "Your support agent was incredibly helpful and sorted it out right away.",
    "Great value for money, I would buy it again without thinking.",
    "Really impressed with the build quality, it feels solid and premium.",
    "Thank you so much for the quick refund, that was painless.",
    "Five stars, {p} exceeded my expectations.",
    "It is comfortable, quiet and looks great in the living room.",
    "The delivery driver was friendly and the packaging was perfect.",
    "I was sceptical at first but I'm delighted with it.",
    "Brilliant customer service, they replaced it with no questions asked.",
    "My whole family loves it, we use it every single day.",
    "Super easy to use and the app is genuinely well designed.",
    "Fast shipping, great quality, very happy customer here.",
    "The new update made it even better, well done!",
    "Excellent product, exactly as described.",
    "Amazing! It does everything I hoped for and more.",
    "Happy to say the replacement works flawlessly.",
    "Lovely design and it's so light, I take it everywhere.",
    "Thanks for fixing my account so quickly, you made my day.",
    "Wonderful experience from order to delivery.",
    "Works like a charm and the price was fair.",
    "I'm thrilled with how well it performs.",
]

NEGATIVE = [
    "The sound quality of {p} was so disappointing.",
    "{P} stopped working after three days.",
    "I've been waiting two weeks and still no refund, this is unacceptable.",
    "Terrible experience, nobody answers the phone.",
    "It arrived broken and the box was soaking wet.",
    "The battery dies within an hour, total waste of money.",
    "Your agent hung up on me twice, I'm furious.",
    "Worst customer service I have ever dealt with.",
    "It is cheaply made and the buttons already feel loose.",
    "I was charged twice and nobody will help me.",
    "Do not buy this, it overheats and smells of burning plastic.",
    "The app keeps crashing and I lost all my settings.",
    "Very poor quality, the stitching came apart after one wash.",
    "Delivery was late again and the parcel was left in the rain.",
    "I'm really annoyed, the replacement has the same fault.",
    "Awful, it's loud, slow and the lid doesn't even close properly.",
    "Such a letdown after all the good reviews.",
    "The screen cracked on its own and they refuse to cover it.",
    "Completely useless, it won't connect to anything.",
    "I regret buying {p}, it's a disaster.",
    "They cancelled my order without telling me, very frustrating.",
    "Horrible smell out of the box and it leaks water.",
    "Three emails and still no reply, I'm done with this company.",
    "The instructions are useless and half the screws were missing.",
    "Broken on arrival and the return label doesn't work.",
    "It was a complete rip-off, avoid.",
]

NEUTRAL = [
    "Hi, please can you refund {p}?",
    "Could you tell me when {p} will be back in stock?",
    "I ordered {p} on Tuesday, what is the tracking number?",
    "Does {p} come with a UK plug or an EU plug?",
    "Please update the delivery address on my order to my office.",
    "Is there a way to change the language of the app to Spanish?",
    "I'd like to know whether the warranty covers accidental damage.",
    "Can I return an item that I bought as a gift?",
    "What are your opening hours on public holidays?",
    "My order number is in the subject line, can you check the status?",
    "Is {p} compatible with older models?",
    "How do I reset my password? The link expired.",
    "I need an invoice with my company's VAT number on it.",
    "Please cancel the subscription at the end of this month.",
    "Which size should I pick if I'm usually between a medium and a large?",
    "Do you ship to Norway, and how long does it take?",
    "I have a question about the difference between the two colours.",
    "Can the delivery be left with a neighbour?",
    "Could you send me the user manual as a PDF?",
    "I'd like to add a second user to my account.",
    "Is it possible to pay in instalments?",
    "When does the summer sale start?",
    "The parcel says delivered, could you confirm which door it was left at?",
    "Please let me know if you need any more details from me.",
    "Is {p} dishwasher safe?",
    "I'm moving house next week, can I pause my deliveries?",
]

OPENERS = [
    "Hi {o},", "Hello,", "Dear {o} team,", "Quick note:", "Hey {o}!", "Good morning,",
    "{o}, ", "To whom it may concern,", "", "", "", "", "", "",
]

POSITIVE_CLOSERS = ["Thanks again!", "Highly recommended.", "Keep it up!",
                    "Will definitely order again.", "Cheers!", ""]
NEGATIVE_CLOSERS = ["Very disappointed.", "Please sort this out.", "Never again.",
                    "I want my money back.", "Not happy at all.", ""]
NEUTRAL_CLOSERS = ["Thanks.", "Kind regards.", "Many thanks in advance.", "Best,", "", ""]
