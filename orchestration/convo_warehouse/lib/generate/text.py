"""Message templates and vocabularies for the synthetic event generator.

Templates may hold slots in braces (``{order}``, ``{email}``, ...); the writer
fills them per conversation in SQL, so one conversation always mentions the
same order number, email address and agent name. All text is English whatever
the conversation's ``language`` property says (the property is a segment, not
a translation).
"""

from __future__ import annotations

SUPPORT_TOPICS = ["order_status", "refund", "password", "billing", "shipping"]
SALES_TOPICS = ["pricing", "demo", "integration"]

# agent_id, display name, kind it serves ("support", "sales", "any"), model,
# base fallback rate of user turns
AGENTS = [
    ("support-ava", "Ava", "support", "gpt-4o-mini", 0.04),
    ("support-sam", "Sam", "support", "gpt-4.1", 0.05),
    ("support-leo", "Leo", "support", "claude-3-5-sonnet", 0.09),
    ("sales-max", "Max", "sales", "gpt-4.1", 0.03),
    ("sales-zoe", "Zoe", "sales", "gpt-4o-mini", 0.04),
    ("general-nova", "Nova", "any", "llama-3.1-70b", 0.06),
]

CHANNELS = ["web", "sms", "voice", "email"]
CHANNEL_WEIGHTS = [0.57, 0.15, 0.13, 0.12]  # the remaining 0.03 is null
DEVICES = ["desktop", "mobile", "tablet"]
DEVICE_WEIGHTS = [0.50, 0.42, 0.08]
SOURCES = ["organic", "paid_search", "email_campaign", "referral", "direct"]
SOURCE_WEIGHTS = [0.35, 0.20, 0.15, 0.10, 0.20]
LANGUAGES = ["en", "es", "de", "fr"]
LANGUAGE_WEIGHTS = [0.70, 0.12, 0.10, 0.08]
ENVIRONMENTS = ["production", "development"]
ENVIRONMENT_WEIGHTS = [0.95, 0.05]
PAGE_URLS = [
    "https://shop.example.com/",
    "https://shop.example.com/orders",
    "https://shop.example.com/help",
    "https://shop.example.com/account/login",
    "https://shop.example.com/pricing",
    "https://shop.example.com/checkout",
]

TOOLS_LOOKUP = {
    "order_status": "lookup_order",
    "refund": "lookup_order",
    "password": "lookup_account",
    "billing": "lookup_invoice",
    "shipping": "lookup_order",
}
TOOLS_ACTION = {
    "order_status": "subscribe_notifications",
    "refund": "issue_refund",
    "password": "reset_password",
    "billing": "issue_refund",
    "shipping": "update_address",
}
HANDOFF_REASONS = ["user_requested", "complex_issue", "negative_sentiment", "policy_exception"]
END_REASONS = ["resolved", "timeout", "user_left", "handoff"]
BUTTONS = ["Track my order", "Talk to sales", "Reset password", "See pricing", "Start return"]
FLOWS = ["returns_flow", "password_reset_flow", "order_tracking_flow", "demo_booking_flow"]
COMMENTS_POSITIVE = ["quick and helpful", "great service, thanks", "solved my problem", "very clear answers"]
COMMENTS_NEGATIVE = ["took too long", "it did not understand my question", "had to repeat myself", "still not fixed"]

# The JSON text of a rating as it appears in `properties.rating`.
RATING_FRAGMENTS = [
    '"positive"', '"Positive"', '"POSITIVE"',
    '"negative"', '"Negative"', '"NEGATIVE"',
    "1", "2", "3", "4", "5",
    '"1"', '"2"', '"3"', '"4"', '"5"',
]

UNKNOWN_EVENT_TYPES = ["mystery_event", "widget_ping", "typing_indicator"]

# Slot values, filled in SQL from the conversation number.
FIRST_NAMES = ["anna", "ben", "carla", "dev", "elena", "farid", "grace", "hugo", "ines", "jamal",
               "kim", "lukas", "maria", "noah", "olga", "pablo", "quinn", "rosa", "sven", "tara"]
LAST_NAMES = ["smith", "garcia", "muller", "dubois", "rossi", "khan", "nguyen", "silva", "novak", "berg"]
PRODUCTS = ["blender", "desk lamp", "running shoes", "coffee grinder", "backpack", "phone case",
            "office chair", "yoga mat", "headphones", "air purifier"]
PLANS = ["Starter", "Team", "Business", "Enterprise"]
COMPANIES = ["Northwind", "Globex", "Initech", "Umbrella Health", "Stark Logistics", "Acme Retail",
             "Hooli", "Vandelay Imports", "Soylent Foods", "Wayne Media"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
TIMES = ["9:30am", "11am", "1pm", "2:30pm", "4pm"]

LONG_REPLY_SUFFIX = (
    " If anything else comes up, just reply here and I will pick it up right away."
)

# category -> list of templates. Categories ending in `.formal` / `.casual`
# are the greeting_tone variants.
TEMPLATES: dict[str, list[str]] = {
    "greet.support.formal": [
        "Hello, and thank you for contacting Acme. My name is {agent_name}. How may I assist you today?",
        "Good day. I am {agent_name}, the Acme virtual assistant. How can I help you?",
        "Welcome to Acme customer support. My name is {agent_name}. What can I do for you today?",
    ],
    "greet.support.casual": [
        "Hey there! I'm {agent_name} \U0001F44B What can I do for you?",
        "Hi! {agent_name} here. What's up?",
        "Hey! I'm {agent_name}, happy to help. What's going on?",
    ],
    "greet.sales.formal": [
        "Hello, I am {agent_name} from the Acme sales team. What brings you to Acme today?",
        "Good day, and welcome to Acme. My name is {agent_name}. How may I help you with our products?",
    ],
    "greet.sales.casual": [
        "Hi there! I'm {agent_name} from Acme \U0001F44B Looking for something in particular?",
        "Hey! {agent_name} here from the Acme team. What are you looking for?",
    ],
    "u.vague": [
        "hi", "hello, I need some help", "hey is anyone there", "I have a question", "help please",
    ],
    "a.ask": [
        "Of course. Could you tell me a bit more about what you need help with?",
        "Sure! What seems to be the problem?",
        "I'm here to help. What's going on?",
    ],
    "u.problem.order_status": [
        "Where is my order {order}? It was supposed to arrive on Monday.",
        "I ordered a {product} last week (order {order}) and it still hasn't shown up",
        "hi, can you check the status of order {order}? the tracking page hasn't updated in days",
    ],
    "u.problem.refund": [
        "I want a refund for order {order}, the {product} arrived broken",
        "how do I get my money back for the {product}? order {order}",
        "I returned the {product} two weeks ago and still haven't received my refund for order {order}",
    ],
    "u.problem.password": [
        "I can't log in, the password reset email never arrives",
        "I forgot my password and the reset link says it expired",
        "locked out of my account after too many login attempts, my email is {email}",
    ],
    "u.problem.billing": [
        "I was charged twice this month for my {plan} plan",
        "why is there a charge of ${amount} on my card ending {last4}?",
        "I need to update the credit card on my {plan} subscription, the old one expired",
    ],
    "u.problem.shipping": [
        "I need to change the delivery address for order {order}",
        "can I switch order {order} to express shipping? I need it before Friday",
        "my package {tracking} says delivered but I never got it",
    ],
    "a.restate.order_status": [
        "I'm sorry your order hasn't arrived yet. Let me check the status of order {order} for you. Can you confirm the email address used for the purchase?",
        "I understand you're still waiting on order {order}. Could you confirm the email address on the order so I can look it up?",
    ],
    "a.restate.refund": [
        "I'm sorry the {product} arrived damaged. I can help with a refund for order {order}. Could you confirm the email on the order?",
        "I understand you're waiting for a refund on order {order}. Which email address did you use for the purchase?",
    ],
    "a.restate.password": [
        "It sounds like the password reset email isn't reaching you. Which email address is on the account?",
        "Sorry you're locked out of your account. Can you confirm the email address you log in with?",
    ],
    "a.restate.billing": [
        "I see, you were charged twice for the {plan} plan. Can you confirm the last four digits of the card that was charged?",
        "Let me look into that charge on your {plan} subscription. What are the last four digits of the card?",
    ],
    "a.restate.shipping": [
        "You'd like to change the delivery details for order {order}. What's the new address?",
        "I can look into the delivery of order {order}. Where should it go instead?",
    ],
    "u.detail.order_status": ["sure, it's {email}", "the email is {email}", "{email}"],
    "u.detail.refund": ["{email}, and I still have the box", "it's {email}", "the order email is {email}"],
    "u.detail.password": ["it's {email}", "{email} is the one I use", "my login is {email}"],
    "u.detail.billing": ["card ends in {last4}", "the last four are {last4}", "{last4}"],
    "u.detail.shipping": [
        "new address is 12 Harbour Street, Springfield",
        "please send it to my office: 400 Market St, Suite 9",
        "it should go to 7 Elm Road instead",
    ],
    "a.propose.order_status": [
        "Thanks! Order {order} is with the carrier, tracking number {tracking}, and it's due tomorrow. Would you like me to turn on delivery notifications by text?",
        "I found it: order {order} was delayed at the depot and ships today with tracking {tracking}. Shall I send you delivery updates?",
    ],
    "a.propose.refund": [
        "Thanks. I can issue a full refund of ${amount} to your original payment method. Shall I go ahead?",
        "I found order {order}. I can refund the ${amount} right now, or send a replacement {product}. Which would you prefer?",
    ],
    "a.propose.password": [
        "I found your account. I can send a new reset link to {email}, valid for 24 hours. Should I send it now?",
        "Your account is locked after several attempts. I can unlock it and send a fresh reset link to {email}. Want me to do that?",
    ],
    "a.propose.billing": [
        "You're right, there's a duplicate charge of ${amount}. I can refund the duplicate charge today. Would you like me to do that?",
        "I see the second charge of ${amount}. I can reverse it and move your {plan} plan to the new card. Shall I proceed?",
    ],
    "a.propose.shipping": [
        "Order {order} hasn't shipped yet, so I can update the address. Do you want me to make that change?",
        "I can open a trace with the carrier for {tracking} and send a replacement if it isn't found in 48 hours. Should I do that?",
    ],
    "u.accept": [
        "ok that worked", "sure, let's do that", "yes please", "yes, go ahead", "perfect, do it",
        "ok sounds good",
    ],
    "a.resolved.order_status": [
        "Done! You'll get a text when order {order} is out for delivery. Is there anything else I can help with?",
    ],
    "a.resolved.refund": [
        "All set. The refund of ${amount} has been issued and should appear in 3-5 business days.",
    ],
    "a.resolved.password": [
        "The reset link is on its way to {email} and your account has been unlocked. You should be able to log in now.",
    ],
    "a.resolved.billing": [
        "Done. The duplicate charge of ${amount} has been refunded to the card ending {last4}.",
    ],
    "a.resolved.shipping": [
        "Done, order {order} will now ship to the new address. You'll receive an updated confirmation email.",
    ],
    "u.thanks": ["thanks, that's all", "great, thank you!", "awesome thanks", "that's everything, thanks"],
    "a.bye": ["You're welcome! Have a great day.", "Happy to help. Take care!", "Glad I could help. Bye for now!"],
    "a.fallback": [
        "Sorry, I didn't quite catch that. Could you rephrase?",
        "I'm not sure I understand. Could you say that another way?",
        "Apologies, I'm having trouble understanding your request.",
    ],
    "u.human": ["can I talk to a real person?", "this isn't helping, I want a human", "please transfer me to an agent"],
    "a.handoff": [
        "I'm connecting you with a member of our team now. Please hold on.",
        "Let me transfer you to a human agent who can help further.",
    ],
    "a.offer": [
        "Before you go, would you like 10% off your next order? I can send a code to your email.",
        "By the way, we have a loyalty discount this week. Want me to email you a code?",
    ],
    "u.email": ["sure, send it to {email}", "yes please, {email}", "ok, {email}"],
    "a.email_ok": ["Great, the code is on its way to {email}.", "Thanks! Check {email} for your code."],
    "u.interest.pricing": [
        "How much does the {plan} plan cost for a team of {seats}?",
        "what's your pricing for {seats} users?",
        "Is there a discount on the {plan} plan for annual billing?",
    ],
    "u.interest.demo": [
        "I'd like to see a demo of your analytics platform",
        "can someone show me how the product works?",
        "We're evaluating tools like yours, could I get a walkthrough?",
    ],
    "u.interest.integration": [
        "Does Acme integrate with Salesforce and Slack?",
        "we use HubSpot, can your tool connect to it?",
        "Do you have an API for exporting data to our warehouse?",
    ],
    "a.qualify": [
        "Great question! To point you in the right direction: how many people are on your team, and when are you hoping to get started?",
        "Happy to help. What company are you with, and roughly how many seats would you need?",
    ],
    "u.answer": [
        "I'm at {company}, we're about {seats} people and want to roll out next quarter",
        "{company}, around {seats} users, ideally this month",
        "we're a team of {seats} at {company}, no fixed timeline yet",
    ],
    "a.offer_demo.pricing": [
        "For {seats} seats the {plan} plan would be the best fit. I can email you a detailed quote right away. Would you like that?",
    ],
    "a.offer_demo.demo": [
        "Sounds like a great fit. Would you like to book a 30-minute demo with a product specialist? I have {day} at {time} available.",
    ],
    "a.offer_demo.integration": [
        "Yes, we have native connectors for that. Would you like to book a demo to see the integration live? {day} at {time} is open.",
    ],
    "u.accept.demo": ["sure, let's do that", "{day} at {time} works for me", "yes, book it please"],
    "u.accept.quote": ["yes please send it to {email}", "sure, my email is {email}"],
    "a.booked": [
        "You're all set for {day} at {time}. A calendar invite is on its way to {email}.",
        "Booked! See you {day} at {time}; the invite went to {email}.",
    ],
    "a.quote_sent": ["Thanks! The quote for the {plan} plan is on its way to {email}."],
    "u.decline": ["not right now, thanks", "I'll think about it and come back", "too expensive for us at the moment"],
}

# Prefixes that turn a message into a near-identical rephrase of itself.
REPHRASE_PREFIXES = ["sorry, ", "I said ", "again: ", "hello? ", "like I said, "]

# user-message category -> (intent, mean sentiment)
USER_CATEGORY_META: dict[str, tuple[str, float]] = {
    "u.vague": ("greeting", 0.0),
    "u.problem.order_status": ("order_status", -0.3),
    "u.problem.refund": ("refund_request", -0.45),
    "u.problem.password": ("password_reset", -0.35),
    "u.problem.billing": ("billing_issue", -0.4),
    "u.problem.shipping": ("change_shipping", -0.2),
    "u.detail.order_status": ("provide_info", 0.0),
    "u.detail.refund": ("provide_info", 0.0),
    "u.detail.password": ("provide_info", 0.0),
    "u.detail.billing": ("provide_info", 0.0),
    "u.detail.shipping": ("provide_info", 0.0),
    "u.accept": ("confirm", 0.5),
    "u.thanks": ("thanks", 0.8),
    "u.human": ("request_human", -0.6),
    "u.email": ("provide_email", 0.3),
    "u.interest.pricing": ("pricing", 0.2),
    "u.interest.demo": ("demo_request", 0.3),
    "u.interest.integration": ("integration_question", 0.2),
    "u.answer": ("provide_info", 0.1),
    "u.accept.demo": ("confirm", 0.5),
    "u.accept.quote": ("provide_email", 0.4),
    "u.decline": ("decline", -0.1),
}
