#!/usr/bin/env python3
"""Generate the Northbeam Robotics assistant workload: queries.jsonl and intents.jsonl.

Everything here is synthetic and seeded: running the script twice writes the same
bytes. Standard library only, so it runs with any Python >= 3.9.

Usage:
    python datasets/workloads/generate.py            # rewrite the files beside this script
    python datasets/workloads/generate.py --out DIR  # write them into DIR instead

How the query stream is built:
    * A *family* is one question with slots (a city, an amount, a product...). Each
      filled-in *variant* of a family is a *cluster*: every query in a cluster wants the
      same answer (``answer_key``). The first variant is the family's base; every other
      variant is a lookalike of it (``lookalike_of`` = the base cluster id) because it
      reads almost the same but needs a different answer.
    * Clusters get Zipf-like popularity (a few very hot, a long tail), a paraphrase is
      drawn per query (the first phrasing is the most common, so exact repeats occur),
      and a little keyboard noise is added to some queries.
    * About one query in six is a one-off (a singleton cluster) built from slot-rich
      templates: order numbers, TCO questions, code snippets and so on.
    * One incident cluster ("is Beacon down?") only occurs in a burst mid-stream.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20250314
N_QUERIES = 1200
SINGLETON_SHARE = 0.16
ZIPF_S = 0.95
NOISE_RATE = 0.12
BURST_CLUSTER = "c-beacon-outage"
BURST_WINDOW = (610, 700)  # seq range (inclusive) of the incident burst
HOT_CLUSTERS = ["c-password-reset", "c-greeting", "c-vpn-drops", "c-hotel-cap-london-150",
                "c-thanks", "c-meal-allowance-uk", "c-beacon-tier-price-pro",
                "c-expense-deadline", "c-annual-leave-standard", "c-payload-nb100"]

TENANTS = ["leeds", "rotterdam", "austin", "partner-acme"]
INTERNAL = {"leeds": 0.5, "rotterdam": 0.25, "austin": 0.25}
CUSTOMER_FACING = {"leeds": 0.35, "rotterdam": 0.2, "austin": 0.2, "partner-acme": 0.25}
EVERYONE = {"leeds": 0.42, "rotterdam": 0.22, "austin": 0.22, "partner-acme": 0.14}

INTENT_TENANTS = {
    "policy_lookup": INTERNAL,
    "it_troubleshooting": INTERNAL,
    "pricing_question": CUSTOMER_FACING,
    "order_status": CUSTOMER_FACING,
    "product_support": CUSTOMER_FACING,
    "smalltalk": EVERYONE,
    "complex_analysis": EVERYONE,
    "code_help": CUSTOMER_FACING,
}

USER_POOLS = {
    "leeds": ["a.okafor", "j.hartley", "s.patel", "r.whitaker", "l.brennan", "m.ahmed",
              "c.dawson", "h.nguyen", "t.booth", "e.lister", "k.sharma", "d.fairclough",
              "p.kowalski", "n.obi", "g.holmes", "b.stead", "f.iqbal", "w.moss"],
    "rotterdam": ["m.dejong", "s.vandijk", "l.bakker", "t.visser", "a.smit", "j.meijer",
                  "e.mulder", "r.bos", "k.vos", "n.jansen"],
    "austin": ["k.ramirez", "b.nguyen", "t.walker", "j.garcia", "a.brooks", "d.kim",
               "m.ortiz", "c.hughes", "r.patel", "s.lee"],
    "partner-acme": ["acme.ops.lead", "acme.jsmith", "acme.warehouse2", "acme.procurement",
                     "acme.it"],
}


def V(key: str, answer: str, **slots: str) -> dict:
    """One variant (cluster) of a family: an id suffix, its answer and its slot values."""
    return {"key": key, "answer": answer, "slots": slots}


def F(fid: str, intent: str, templates: list[str], variants: list[dict] | None = None,
      tenants: dict | None = None, answer: str | None = None) -> dict:
    """A family of clusters sharing phrasing templates. Without variants it is one cluster."""
    if variants is None:
        variants = [V("", answer or "")]
    return {"fid": fid, "intent": intent, "templates": templates, "variants": variants,
            "tenants": tenants}


FAMILIES: list[dict] = [
    # ---------------------------------------------------------------- policy_lookup
    F("hotel-cap", "policy_lookup", [
        "Can I expense a hotel over £{amt} a night in {city}?",
        "Is a £{amt} per night hotel in {city} within the travel policy?",
        "{city} hotel is £{amt}/night - will finance reimburse that?",
        "what's the rule for hotels in {city}, mine is £{amt} a night",
        "Booking a hotel in {city} for £{amt} per night. Do I need pre-approval?",
    ], [
        V("london-150", "Yes: London cap is £200/night; £150 is within policy.", amt="150", city="London"),
        V("london-250", "Over the £200 London cap: needs line-manager pre-approval.", amt="250", city="London"),
        V("manchester-150", "Over the £130 cap for UK cities outside London: pre-approval needed.", amt="150", city="Manchester"),
    ]),
    F("meal-allowance", "policy_lookup", [
        "What's the daily meal allowance when travelling in {place}?",
        "How much can I claim for food per day on a trip to {place}?",
        "per diem for {place}?",
        "Daily subsistence rate for business travel in {place} please",
    ], [
        V("uk", "UK meal allowance: £45 per day, receipts required.", place="the UK"),
        V("us", "US meal allowance: $75 per day, receipts required.", place="the US"),
        V("nl", "Netherlands meal allowance: €60 per day, receipts required.", place="the Netherlands"),
    ]),
    F("annual-leave", "policy_lookup", [
        "How many days of annual leave do I get{suffix}?",
        "What's my holiday entitlement{suffix}?",
        "how many holiday days do we get{suffix}",
        "Annual leave allowance{suffix} - how many days?",
    ], [
        V("standard", "25 days annual leave plus public holidays.", suffix=""),
        V("5-years", "After five years' service: 27 days plus public holidays.", suffix=" after five years of service"),
    ]),
    F("leave-carryover", "policy_lookup", [
        "Can I carry over unused holiday into next year?",
        "Do unused leave days roll over?",
        "What happens to holiday I don't take by December?",
        "can i carry forward leave days",
    ], answer="Up to 5 unused days carry over and must be used by 31 March."),
    F("receipts", "policy_lookup", [
        "Do I need a receipt for expenses {dir} £25?",
        "Are receipts required for claims {dir} £25?",
        "Expense {dir} £25 - is a receipt mandatory?",
        "Do I have to attach a receipt if the expense is {dir} £25?",
    ], [
        V("under-25", "No receipt needed under £25; add a short note to the claim.", dir="under"),
        V("over-25", "Yes: an itemised receipt is required for anything over £25.", dir="over"),
    ]),
    F("remote-work", "policy_lookup", [
        "How many days a week can I work from {where}?",
        "What's the limit on working from {where}?",
        "Am I allowed to work from {where}, and for how long?",
    ], [
        V("home", "Hybrid: up to 3 days a week from home, agreed with your manager.", where="home"),
        V("abroad", "Working from abroad: max 20 working days a year, HR approval first.", where="abroad"),
    ]),
    F("parental-leave", "policy_lookup", [
        "How long is {kind} leave at Northbeam?",
        "What's the {kind} leave policy?",
        "how many weeks {kind} leave do we get",
        "Is {kind} leave paid in full, and for how long?",
    ], [
        V("paternity", "Paternity leave: 4 weeks at full pay.", kind="paternity"),
        V("maternity", "Maternity leave: 26 weeks full pay, then statutory pay.", kind="maternity"),
    ]),
    F("business-class", "policy_lookup", [
        "Can I fly business class on flights {dir} 6 hours?",
        "Is business class allowed for a flight {dir} six hours?",
        "Flight is {dir} 6 hours - economy only or can I book business?",
    ], [
        V("over-6h", "Yes: business class is allowed for scheduled flights over 6 hours.", dir="over"),
        V("under-6h", "No: flights under 6 hours are economy only.", dir="under"),
    ]),
    F("expense-deadline", "policy_lookup", [
        "What's the deadline to submit expenses?",
        "How long do I have to file an expense claim?",
        "Is there a time limit on expense claims?",
        "when do expenses need to be submitted by",
    ], answer="Submit in Ledgerly within 60 days of the spend."),
    F("mileage", "policy_lookup", [
        "What is the mileage rate for using my own {vehicle}?",
        "How much per mile can I claim for my {vehicle}?",
        "Mileage allowance when I drive my own {vehicle} for work?",
    ], [
        V("car", "Own car: 45p per mile for the first 10,000 business miles.", vehicle="car"),
        V("motorbike", "Own motorbike: 24p per mile.", vehicle="motorbike"),
    ]),
    F("supplier-gift", "policy_lookup", [
        "Can I accept a gift from a supplier worth £{amt}?",
        "A vendor sent me a £{amt} gift, can I keep it?",
        "Supplier gift of about £{amt} - allowed?",
    ], [
        V("50", "Yes, but log it in the gift register (limit is £100).", amt="50"),
        V("150", "No: gifts over £100 must be declined or handed to Legal.", amt="150"),
    ]),
    F("sick-report", "policy_lookup", [
        "Who do I tell if I'm off sick?",
        "I'm ill today, who do I need to notify?",
        "How do I report sick leave?",
        "off sick - what's the process",
    ], answer="Tell your line manager before 10:00 and log it in PeopleHub."),
    F("training-budget", "policy_lookup", [
        "How much is the annual training budget per person?",
        "What's my learning and development budget?",
        "Do we get a yearly training allowance?",
    ], answer="£1,000 per person per year, approved by your manager."),
    F("office-hours", "policy_lookup", [
        "What time does the {office} office open?",
        "Opening hours of the {office} office?",
        "When is the {office} office open until?",
    ], [
        V("rotterdam", "Rotterdam office: 07:30-19:00 Mon-Fri.", office="Rotterdam"),
        V("austin", "Austin office: 08:00-18:00 CT Mon-Fri.", office="Austin"),
        V("leeds", "Leeds HQ: 07:00-20:00 Mon-Fri, Sat 09:00-13:00.", office="Leeds"),
    ]),
    F("dogs", "policy_lookup", [
        "Can I bring my dog to the {office} office?",
        "Are dogs allowed in the {office} office?",
        "is the {office} office dog friendly?",
    ], [
        V("leeds", "Leeds: registered dogs on Fridays only.", office="Leeds"),
        V("austin", "Austin: no pets, service animals only.", office="Austin"),
    ]),
    # ----------------------------------------------------------- it_troubleshooting
    F("vpn-drops", "it_troubleshooting", [
        "VPN keeps disconnecting, how do I fix it?",
        "My VPN drops every few minutes",
        "GlobalProtect keeps kicking me off",
        "vpn disconnects constantly from home, any fix?",
        "Why does the VPN keep dropping out?",
    ], answer="Update GlobalProtect to 6.2 and connect to the NB-Secure gateway."),
    F("password-reset", "it_troubleshooting", [
        "How do I reset my password?",
        "I forgot my password",
        "password reset please",
        "How can I change my Northbeam password?",
        "locked out, need to reset my password",
    ], answer="Self-service reset at id.northbeam.example (MFA required)."),
    F("mfa-new-phone", "it_troubleshooting", [
        "I got a new phone, how do I move my MFA?",
        "How do I set up the authenticator on a new phone?",
        "New mobile - MFA app not working anymore",
    ], answer="Raise an 'MFA re-enrol' IT ticket; use backup codes meanwhile."),
    F("printer", "it_troubleshooting", [
        "The printer on floor {floor} in Leeds isn't working",
        "Leeds floor {floor} printer is broken again",
        "Can't print on the {floor_word} floor in Leeds",
    ], [
        V("floor-2", "Known fault (IT-4412): use printer LDS-PRN-02B meanwhile.", floor="2", floor_word="second"),
        V("floor-3", "Restart the job from the print portal; if stuck, ticket IT.", floor="3", floor_word="third"),
    ]),
    F("outlook-sync", "it_troubleshooting", [
        "Outlook calendar isn't syncing",
        "My calendar in Outlook is out of date on my laptop",
        "outlook not showing new meetings",
    ], answer="Remove and re-add the account, then clear the Outlook cache."),
    F("guest-wifi", "it_troubleshooting", [
        "What's the guest wifi password?",
        "How do visitors get on the Wi-Fi?",
        "guest wifi login?",
    ], answer="Guest Wi-Fi uses daily vouchers from reception; no shared password."),
    F("drive-access", "it_troubleshooting", [
        "How do I get access to the {team} shared drive?",
        "Need access to the {team} shared folder",
        "Who approves access to the {team} drive?",
    ], [
        V("finance", "Request in the IT portal; the Finance data owner approves.", team="Finance"),
        V("legal", "Request in the IT portal; the General Counsel approves.", team="Legal"),
    ]),
    F("bitlocker", "it_troubleshooting", [
        "My laptop is stuck on the BitLocker recovery screen",
        "Laptop asking for a BitLocker recovery key after update",
        "bitlocker key needed, what do I do",
    ], answer="Call the IT desk on ext. 4000 for the recovery key; don't reinstall."),
    F("beacon-sso", "it_troubleshooting", [
        "Beacon login says SSO error 403",
        "Getting 403 when signing into Beacon with SSO",
        "Can't log into Beacon, single sign-on error",
    ], answer="Your account isn't assigned the Beacon app in Okta; ask IT."),
    F("beacon-outage", "it_troubleshooting", [
        "Is Beacon down right now?",
        "Beacon dashboard not loading for anyone else?",
        "is beacon having an outage",
        "Robots not reporting in Beacon - known issue?",
    ], answer="Yes: incident INC-2291 in the EU region; updates on the status page."),
    # ------------------------------------------------------------- pricing_question
    F("beacon-tier-price", "pricing_question", [
        "How much does Beacon {tier} cost per robot per month?",
        "What's the price of Beacon {tier}?",
        "Beacon {tier} pricing per robot?",
        "monthly cost of a Beacon {tier} licence",
    ], [
        V("pro", "Beacon Pro: £39 per robot per month on annual billing.", tier="Pro"),
        V("starter", "Beacon Starter: £19 per robot per month.", tier="Starter"),
        V("enterprise", "Beacon Enterprise: custom quote, from £60 per robot per month.", tier="Enterprise"),
    ]),
    F("robot-list-price", "pricing_question", [
        "What is the list price of an {model}?",
        "How much does an {model} cost?",
        "{model} price?",
        "Current list price for one {model} unit",
    ], [
        V("nb100", "NB-100 Courier list price: £28,500.", model="NB-100 Courier"),
        V("nb300", "NB-300 Lifter list price: £74,000.", model="NB-300 Lifter"),
    ]),
    F("volume-discount", "pricing_question", [
        "What discount do we give for orders of {n} or more robots?",
        "Is there a volume discount for {n}+ robots?",
        "Customer wants {n} robots - what discount can I offer?",
    ], [
        V("10", "8% volume discount from 10 robots.", n="10"),
        V("50", "15% from 50 robots, needs VP Sales sign-off.", n="50"),
    ]),
    F("dock-price", "pricing_question", [
        "How much is an NB-Dock charging station?",
        "NB-Dock price?",
        "What do we charge for an extra charging dock?",
    ], answer="NB-Dock: £3,200 each."),
    F("warranty-price", "pricing_question", [
        "How much is the {years}-year extended warranty for the NB-100?",
        "Price of a {years} year warranty on an NB-100?",
        "What does {years}-year extended cover cost for a Courier?",
    ], [
        V("3y", "3-year extended warranty for NB-100: £2,400.", years="3"),
        V("5y", "5-year extended warranty for NB-100: £3,900.", years="5"),
    ]),
    F("eur-pricing", "pricing_question", [
        "Do we quote Beacon in euros for Dutch customers?",
        "Is there a EUR price list for Beacon?",
        "Beacon prices in euro?",
    ], answer="Yes: use the EUR price list (Beacon Pro €45 per robot per month).",
        tenants={"rotterdam": 0.7, "leeds": 0.2, "partner-acme": 0.1}),
    # ---------------------------------------------------------------- order_status
    F("acme-shipment", "order_status", [
        "When will the {model} units for Acme ship?",
        "Shipping date for Acme's {model} order?",
        "Any update on the Acme {model} delivery?",
    ], [
        V("nb300", "Acme NB-300 order ships in week 14 from Leeds.", model="NB-300"),
        V("nb100", "Acme NB-100 order was delivered on 3 March.", model="NB-100"),
    ], tenants={"partner-acme": 0.7, "leeds": 0.2, "austin": 0.1}),
    F("rma", "order_status", [
        "How do I return a faulty NB-Dock?",
        "Return process for a broken dock?",
        "RMA for NB-Dock - how?",
    ], answer="Raise an RMA in the Beacon portal; a prepaid label is emailed."),
    # ------------------------------------------------------------ product_support
    F("incline", "product_support", [
        "Does {model} support ramps steeper than 5 degrees?",
        "Can the {model} climb a 5 degree ramp?",
        "Max ramp incline for {model}?",
    ], [
        V("nb100", "Yes: NB-100 handles inclines up to 6 degrees.", model="NB-100"),
        V("nb300", "No: NB-300 is limited to 3 degrees.", model="NB-300"),
    ]),
    F("payload", "product_support", [
        "What's the max payload of the {model}?",
        "How much weight can an {model} carry?",
        "{model} payload capacity?",
    ], [
        V("nb100", "NB-100 payload: 60 kg.", model="NB-100"),
        V("nb300", "NB-300 payload: 1,200 kg.", model="NB-300"),
    ]),
    F("battery", "product_support", [
        "How long does the {model} battery last on one charge?",
        "{model} runtime per charge?",
        "battery life of {model}",
    ], [
        V("nb100", "NB-100: about 10 hours per charge.", model="NB-100"),
        V("nb300", "NB-300: about 8 hours per charge.", model="NB-300"),
    ]),
    F("firmware", "product_support", [
        "How do I update firmware on the NB-300?",
        "Firmware upgrade process for Lifter robots?",
        "how to push new firmware to NB-300s",
    ], answer="Beacon > Fleet > Firmware, with a staged rollout."),
    F("error-code", "product_support", [
        "What does error {code} mean on a Courier?",
        "NB-100 showing {code}, what is it?",
        "Courier robot error code {code}",
    ], [
        V("e214", "E-214: lidar obstructed; clean the sensor window.", code="E-214"),
        V("e241", "E-241: battery too hot; let it cool and check the dock.", code="E-241"),
    ]),
    F("cold-store", "product_support", [
        "Can the NB-100 operate in a freezer at {temp}?",
        "Is the Courier OK at {temp}?",
        "NB-100 working temperature - will it run at {temp}?",
    ], [
        V("minus20", "No: NB-100 is rated to -5°C; use the NB-100C cold-store kit.", temp="-20°C"),
        V("zero", "Yes: 0°C is inside the NB-100 range of -5°C to 40°C.", temp="0°C"),
    ]),
    F("integration", "product_support", [
        "Does Beacon integrate with {wms}?",
        "Is there a {wms} connector for Beacon?",
        "Beacon + {wms} integration possible?",
    ], [
        V("sap", "Yes: certified SAP EWM connector (Enterprise tier).", wms="SAP EWM"),
        V("manhattan", "Manhattan: REST API only, no native connector.", wms="Manhattan WMS"),
    ]),
    F("dock-sharing", "product_support", [
        "How many NB-100s can share one NB-Dock?",
        "Robots per charging dock?",
        "how many couriers per dock",
    ], answer="Up to 4 NB-100s per NB-Dock."),
    F("wifi-req", "product_support", [
        "What Wi-Fi does the NB-300 need?",
        "Network requirements for Lifter robots?",
        "NB-300 wifi spec",
    ], answer="5 GHz WPA2-Enterprise with roaming under 50 ms."),
    # ------------------------------------------------------------------- smalltalk
    F("greeting", "smalltalk", [
        "hi", "hello", "Hello!", "good morning", "hey there", "Hi, are you there?",
    ], answer="Greeting."),
    F("thanks", "smalltalk", [
        "thanks!", "thank you", "Thanks, that helped", "cheers", "great, thanks a lot",
    ], answer="You're welcome."),
    F("capabilities", "smalltalk", [
        "what can you do?", "What can I ask you?", "How can you help me?",
    ], answer="Capabilities overview."),
    F("identity", "smalltalk", [
        "Who are you?", "are you a bot?", "Am I talking to a person?",
    ], answer="I'm Northbeam's internal AI assistant."),
    F("joke", "smalltalk", [
        "tell me a joke", "Tell me a robot joke", "got any jokes?",
    ], answer="A robot joke."),
    # ------------------------------------------------------------ complex_analysis
    F("policy-diff", "complex_analysis", [
        "Summarise the main changes between the {a} and {b} travel policy",
        "What changed in the travel policy from {a} to {b}?",
        "Differences between travel policy {a} and {b}, briefly",
    ], [
        V("2024-2025", "2025 vs 2024: London cap £180->£200, meal allowance £40->£45.", a="2024", b="2025"),
        V("2023-2024", "2024 vs 2023: rail first class removed, mileage 40p->45p.", a="2023", b="2024"),
    ]),
    F("q-summary", "complex_analysis", [
        "Summarise last quarter's top support ticket themes",
        "What were the biggest support issues last quarter?",
        "Give me an overview of support ticket trends for last quarter",
    ], answer="Top themes: Wi-Fi roaming, E-214 lidar errors, dock firmware."),
    # ----------------------------------------------------------------- code_help
    F("api-list-robots", "code_help", [
        "How do I call the Beacon API to list robots in {lang}?",
        "{lang} example for listing robots via the Beacon API",
        "Beacon API list robots - {lang} snippet?",
    ], [
        V("python", "Python: GET /v2/fleets/{id}/robots with a bearer token (requests).", lang="Python"),
        V("javascript", "JavaScript: fetch GET /v2/fleets/{id}/robots with a bearer token.", lang="JavaScript"),
    ]),
    F("api-rate-limit", "code_help", [
        "What's the rate limit of the Beacon API?",
        "How many requests per minute does the Beacon API allow?",
        "beacon api throttling limits?",
    ], answer="600 requests per minute per token; 429 with Retry-After beyond that."),
    F("api-pagination", "code_help", [
        "How do I paginate Beacon API results?",
        "Beacon API only returns 100 robots, how do I get the rest?",
        "pagination in the beacon api",
    ], answer="Pass the next_cursor value as ?cursor= until it is null."),
]

# ------------------------------------------------------------------ singletons
ORDER_TEMPLATES = [
    "Where is my order NB-ORD-{n}?",
    "Status of order NB-ORD-{n} please",
    "Has NB-ORD-{n} been dispatched yet?",
    "any tracking for order NB-ORD-{n}?",
]
BATTERY_TEMPLATES = [
    "Has the replacement battery for robot R-{r} shipped?",
    "When does the spare battery for R-{r} arrive?",
]
TICKET_TEMPLATES = [
    "What's the latest on support ticket SUP-{t}?",
    "Can you check ticket SUP-{t} for me?",
]
SITES = ["a 12,000 sq ft", "a 40,000 sq ft", "an 85,000 sq ft", "a 150,000 sq ft",
         "a two-storey", "a cold-storage", "a cross-dock"]
CITIES = ["Bradford", "Eindhoven", "Dallas", "Hull", "Antwerp", "San Antonio", "Sheffield",
          "Utrecht", "Houston", "Doncaster", "Ghent", "El Paso"]
ISSUES = ["a late delivery", "a robot that keeps stopping in aisle 4",
          "an invoice that charged Pro instead of Starter", "dock firmware bricking a unit",
          "slow response times from our support desk", "a scratched NB-300 on arrival",
          "Beacon reports showing the wrong shift totals"]
COMPLEX_TEMPLATES = [
    "Compare the total cost of {a} NB-100s versus {b} NB-300s over {y} years for {site} warehouse",
    "Estimate how many NB-100 robots {site} warehouse running {s} shifts would need to move {p} totes a day",
    "Draft a reply to a customer in {city} complaining about {issue}",
    "Build a business case for moving a {site} site from Beacon Starter to Pro with {a} robots",
    "Given {p} picks a day and {s} shifts, is {b} NB-300s enough for {site} warehouse? Show your reasoning",
]
CODE_TEMPLATES = [
    "Why does requests.get(url, headers={{'Authorization': token}}) return 401 from Beacon when the token works in Postman? ({n})",
    "My loop over /v2/fleets/{f}/robots stops at page {pg}, what am I doing wrong?",
    "How do I parse the Beacon webhook payload for event type {ev} in Python?",
    "Write a SQL query to count robots per fleet where battery_pct < {b} in the Beacon export",
    "TypeError: 'NoneType' object is not subscriptable when reading robot['{field}'] from the Beacon API, why?",
    "Regex to validate order ids like NB-ORD-{n}?",
]
WEBHOOK_EVENTS = ["robot.fault", "robot.docked", "mission.completed", "battery.low",
                  "fleet.updated", "mission.failed"]
FIELDS = ["location", "battery", "mission", "firmware", "last_seen", "zone"]
MISC_TEMPLATES = [
    "Who is the facilities contact for {office} this week?",
    "Is the {room} meeting room in {office} bookable on {day}?",
    "Where do I find the {doc} template?",
]
ROOMS = ["Aire", "Maas", "Colorado", "Pennine", "Erasmus", "Zilker", "Kirkstall", "Delfshaven"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
DOCS = ["NDA", "purchase order", "site survey", "risk assessment", "statement of work",
        "change request", "incident post-mortem", "customer handover"]

KEYS_NEAR = {
    "a": "sq", "s": "ad", "e": "wr", "o": "ip", "i": "uo", "t": "ry", "n": "bm",
    "r": "et", "l": "k", "h": "gj", "d": "sf", "c": "xv", "u": "yi", "p": "o",
}


def add_noise(text: str, rng: random.Random) -> str:
    """Apply one realistic typing slip: a swap, a dropped or fat-fingered letter, casing."""
    kind = rng.choice(["swap", "drop", "near", "lower", "nopunct"])
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if kind == "lower":
        return text.lower()
    if kind == "nopunct":
        return text.rstrip("?!.") if text[-1:] in "?!." else text.lower()
    if len(letters) < 4:
        return text.lower()
    i = rng.choice(letters[1:-1])
    if kind == "swap" and text[i + 1 : i + 2].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "near" and text[i].lower() in KEYS_NEAR:
        return text[:i] + rng.choice(KEYS_NEAR[text[i].lower()]) + text[i + 1 :]
    return text[:i] + text[i + 1 :]


def build_clusters() -> list[dict]:
    """Expand families into clusters (base first, lookalikes after)."""
    clusters = []
    for fam in FAMILIES:
        base_id = None
        for k, var in enumerate(fam["variants"]):
            cid = f"c-{fam['fid']}" + (f"-{var['key']}" if var["key"] else "")
            if k == 0:
                base_id = cid
            clusters.append({
                "cluster_id": cid,
                "intent": fam["intent"],
                "answer_key": var["answer"],
                "texts": [t.format(**var["slots"]) for t in fam["templates"]],
                "lookalike_of": None if k == 0 else base_id,
                "tenants": fam["tenants"] or INTENT_TENANTS[fam["intent"]],
            })
    return clusters


def make_singleton(rng: random.Random, used: set[str]) -> tuple[str, str, str]:
    """Return (text, intent, answer_key) for a one-off query never seen before."""
    while True:
        kind = rng.choices(["order", "battery", "ticket", "complex", "code", "misc"],
                           weights=[30, 8, 10, 22, 18, 12])[0]
        if kind == "order":
            n = rng.randint(40000, 49999)
            text, intent, ans = rng.choice(ORDER_TEMPLATES).format(n=n), "order_status", f"Status of NB-ORD-{n}."
        elif kind == "battery":
            r = rng.randint(1000, 9999)
            text, intent, ans = rng.choice(BATTERY_TEMPLATES).format(r=r), "order_status", f"Battery shipment for R-{r}."
        elif kind == "ticket":
            t = rng.randint(10000, 19999)
            text, intent, ans = rng.choice(TICKET_TEMPLATES).format(t=t), "order_status", f"Update on SUP-{t}."
        elif kind == "complex":
            text = rng.choice(COMPLEX_TEMPLATES).format(
                a=rng.choice([6, 10, 12, 18, 24, 40]), b=rng.choice([2, 3, 4, 6, 8]),
                y=rng.choice([3, 5, 7]), site=rng.choice(SITES), s=rng.choice([1, 2, 3]),
                p=rng.choice(["8,000", "15,000", "22,000", "40,000"]), city=rng.choice(CITIES),
                issue=rng.choice(ISSUES))
            intent, ans = "complex_analysis", "Bespoke analysis."
        elif kind == "code":
            text = rng.choice(CODE_TEMPLATES).format(
                n=rng.randint(40000, 49999), f=rng.randint(100, 999), pg=rng.choice([2, 3, 5, 10]),
                ev=rng.choice(WEBHOOK_EVENTS), b=rng.choice([10, 15, 20, 25, 30]),
                field=rng.choice(FIELDS))
            intent, ans = "code_help", "Bespoke code answer."
        else:
            office = rng.choice(["Leeds", "Rotterdam", "Austin"])
            text = rng.choice(MISC_TEMPLATES).format(office=office, room=rng.choice(ROOMS),
                                                     day=rng.choice(DAYS), doc=rng.choice(DOCS))
            intent = "policy_lookup"
            ans = "One-off facilities/document answer."
        if text.lower() not in used:
            used.add(text.lower())
            return text, intent, ans


def pick_tenant(weights: dict, rng: random.Random) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def pick_user(tenant: str, rng: random.Random) -> str:
    pool = USER_POOLS[tenant]
    # a few people ask most of the questions
    return rng.choices(pool, weights=[1.0 / (i + 1) ** 0.7 for i in range(len(pool))])[0]


def generate_queries(rng: random.Random) -> list[dict]:
    clusters = build_clusters()
    by_id = {c["cluster_id"]: i for i, c in enumerate(clusters)}
    # the head of the popularity curve is fixed (these really are the hottest questions);
    # every other cluster, base or lookalike, gets a random place in the long tail
    head = [by_id[c] for c in HOT_CLUSTERS]
    tail = [i for i in range(len(clusters)) if i not in head]
    rng.shuffle(tail)
    weights = [0.0] * len(clusters)
    for rank, idx in enumerate(head + tail, start=1):
        weights[idx] = 1.0 / rank ** ZIPF_S
    burst_idx = by_id[BURST_CLUSTER]
    weights[burst_idx] = 0.0

    used_singletons = {t.lower() for c in clusters for t in c["texts"]}
    plan: list[tuple[str, object]] = []
    for seq in range(1, N_QUERIES + 1):
        if BURST_WINDOW[0] <= seq <= BURST_WINDOW[1] and rng.random() < 0.35:
            plan.append(("cluster", burst_idx))
        elif rng.random() < SINGLETON_SHARE:
            plan.append(("single", None))
        else:
            plan.append(("cluster", rng.choices(range(len(clusters)), weights=weights)[0]))

    # every cluster occurs at least once; bases at least twice so lookalikes have a target
    counts = {i: 0 for i in range(len(clusters))}
    for kind, idx in plan:
        if kind == "cluster":
            counts[idx] += 1
    hottest = max(range(len(clusters)), key=lambda i: weights[i])
    for idx in range(len(clusters)):
        need = (2 if clusters[idx]["lookalike_of"] is None else 1) - counts[idx]
        while need > 0 and idx != burst_idx:
            spots = [p for p, (k, i) in enumerate(plan) if k == "cluster" and i == hottest]
            plan[rng.choice(spots)] = ("cluster", idx)
            need -= 1

    rows = []
    for seq, (kind, idx) in enumerate(plan, start=1):
        if kind == "single":
            text, intent, answer = make_singleton(rng, used_singletons)
            cid = f"s-{seq:05d}"
            tenant = pick_tenant(INTENT_TENANTS[intent], rng)
            look = None
        else:
            c = clusters[idx]
            texts = c["texts"]
            text = rng.choices(texts, weights=[3.0] + [1.0] * (len(texts) - 1))[0]
            if rng.random() < NOISE_RATE:
                text = add_noise(text, rng)
            intent, cid, answer, look = c["intent"], c["cluster_id"], c["answer_key"], c["lookalike_of"]
            tenant = pick_tenant(c["tenants"], rng)
        rows.append({
            "id": f"q-{seq:05d}",
            "seq": seq,
            "tenant": tenant,
            "user": pick_user(tenant, rng),
            "text": text,
            "intent": intent,
            "cluster_id": cid,
            "lookalike_of": look,
            "answer_key": answer,
        })
    return rows


# ===================================================================== intents
# Labelled routing examples, worded independently of the query stream above.
# Each entry: (intent, difficulty, template, {slot: choices}).
INTENT_TEMPLATES: list[tuple[str, str, str, dict]] = [
    # policy_lookup: easy = one rule, hard = several rules combined or an edge case
    ("policy_lookup", "easy", "Where is the {doc} published?", {"doc": ["travel policy", "expenses policy", "leave policy", "whistleblowing policy", "hybrid working policy", "IT acceptable use policy", "anti-bribery policy"]}),
    ("policy_lookup", "easy", "Quick one: is {thing} covered by the expenses policy?", {"thing": ["airport parking", "a taxi home after 9pm", "a phone charger bought on a trip", "laundry on a week-long trip", "Wi-Fi on a train", "a visa fee", "a team lunch"]}),
    ("policy_lookup", "easy", "Which form do I fill in for {thing}?", {"thing": ["a change of bank details", "jury service", "a flexible working request", "a secondment", "an overtime claim", "an eye test voucher"]}),
    ("policy_lookup", "easy", "Who signs off {thing} in {dept}?", {"thing": ["overtime", "conference tickets", "training courses"], "dept": ["Product", "Support", "Facilities", "Finance"]}),
    ("policy_lookup", "hard", "I'm in {city} for {n} nights, my partner joins for {m} of them and I'm extending for a personal weekend. Which hotel and flight costs can I claim, and how should the bill be split?", {"city": ["Austin", "Rotterdam", "Munich"], "n": ["5", "8", "9"], "m": ["2", "3"]}),
    ("policy_lookup", "hard", "A customer in {country} offered to pay for my hotel during the site visit. How does that interact with our anti-bribery rules and the {amt} gift limit, and what do I need to declare?", {"country": ["Belgium", "Texas", "Germany"], "amt": ["£100", "€115"]}),
    ("policy_lookup", "hard", "I work {pattern}. Given the hybrid policy, the {n}-day abroad rule and UK tax residency, can I spend {w} weeks working from {place} this summer?", {"pattern": ["part-time, three days a week", "compressed hours"], "n": ["20"], "w": ["four", "six"], "place": ["Portugal", "my parents' home in Poland"]}),
    # it_troubleshooting
    ("it_troubleshooting", "easy", "How do I {task}?", {"task": ["connect to the meeting room screen", "install Slack on my work laptop", "add a shared mailbox in Outlook", "unlock my account", "set an out-of-office reply", "request a second monitor", "find my laptop's asset tag", "turn on caption in Teams calls"]}),
    ("it_troubleshooting", "easy", "My {device} {symptom}.", {"device": ["headset", "docking station", "badge reader login"], "symptom": ["stopped working this morning", "isn't recognised", "keeps beeping"]}),
    ("it_troubleshooting", "easy", "Teams says '{err}' when I join calls - quick fix?", {"err": ["no microphone found", "you're offline", "meeting not available"]}),
    ("it_troubleshooting", "easy", "Where do I raise a ticket for {thing}?", {"thing": ["a broken keyboard", "a new starter's laptop", "a software licence", "a lost badge", "a phishing email", "a VPN exception"]}),
    ("it_troubleshooting", "easy", "How do I get {app} installed?", {"app": ["Visual Studio Code", "Tableau", "Python 3.12", "the Beacon desktop client"]}),
    ("it_troubleshooting", "hard", "Since the {ver} update, {n} laptops in {office} lose Wi-Fi when docked but only on the {band} band, and event logs show driver resets. How should we diagnose it before rolling back?", {"ver": ["24H2", "March"], "n": ["a dozen", "about 30"], "office": ["Rotterdam", "Leeds"], "band": ["5 GHz", "6 GHz"]}),
    ("it_troubleshooting", "hard", "Robots at the {site} site intermittently drop off the network during {when}; APs show roaming above {ms} ms. Walk me through isolating whether it's the RF plan, the controller or the robot client.", {"site": ["Hull", "Dallas", "Ghent"], "when": ["shift change", "peak picking", "night replenishment"], "ms": ["120", "300"]}),
    # pricing_question
    ("pricing_question", "easy", "What's the price of {item}?", {"item": ["a replacement lidar module", "a spare NB-100 battery", "the on-site installation day", "an NB-Dock wall bracket", "operator training per person", "a Beacon sandbox environment", "the annual health check visit"]}),
    ("pricing_question", "easy", "Do prices on the {list} price list include VAT?", {"list": ["UK", "EU", "partner"]}),
    ("pricing_question", "easy", "Is {tier} billed monthly or annually?", {"tier": ["Beacon Starter", "Beacon Enterprise", "the support add-on"]}),
    ("pricing_question", "easy", "How much is {item} per {unit}?", {"item": ["Beacon premium support", "extra Beacon user seats", "the telemetry data export add-on", "remote commissioning"], "unit": ["month", "year"]}),
    ("pricing_question", "easy", "Is there an education or charity discount on {prod}?", {"prod": ["Beacon", "the NB-100", "training courses"]}),
    ("pricing_question", "easy", "What currency do we invoice {cust} in?", {"cust": ["Belgian customers", "Texas customers", "Acme", "Irish customers"]}),
    ("pricing_question", "hard", "Quote {a} Couriers, {b} Lifters, {d} docks and Beacon {tier} for {y} years with the volume discount and a {w}-year warranty - what's the total and monthly equivalent?", {"a": ["12", "25"], "b": ["2", "4"], "d": ["4", "7"], "tier": ["Pro", "Enterprise"], "y": ["3"], "w": ["3", "5"]}),
    ("pricing_question", "hard", "A partner wants {pct}% off Beacon {tier} on a {y}-year deal plus free training. Is that within our discount authority, and what margin are we left with?", {"pct": ["18", "22", "25"], "tier": ["Pro", "Enterprise"], "y": ["2", "4"]}),
    # order_status
    ("order_status", "easy", "Can you look up where consignment {ref} is?", {"ref": ["CN-7781", "CN-7802", "CN-8120", "CN-8133", "CN-8154", "CN-8201", "CN-8219", "CN-8240", "CN-8302", "CN-8311"]}),
    ("order_status", "easy", "Has purchase order {ref} been invoiced?", {"ref": ["PO-33120", "PO-33187", "PO-33201", "PO-33254", "PO-33276", "PO-33310", "PO-33345", "PO-33391"]}),
    ("order_status", "easy", "What is the expected delivery date for {cust}'s order?", {"cust": ["Harrowgate Foods", "Van Leeuwen Logistics", "Lone Star Parts", "Bramley Pharma", "Kade Retail", "Ridgeway Cold Chain", "Pecos Distribution", "Scheldt Freight"]}),
    ("order_status", "easy", "Is the {part} for {cust} back-ordered?", {"part": ["dock power supply", "bumper kit", "lift fork sensor"], "cust": ["Harrowgate Foods", "Kade Retail", "Lone Star Parts"]}),
    ("order_status", "hard", "Reconcile the {n} open POs for {cust} against what Beacon says is deployed and tell me which invoices we can chase.", {"n": ["five", "eleven"], "cust": ["Kade Retail", "Bramley Pharma"]}),
    ("order_status", "hard", "{cust}'s order was split across {n} shipments, one went to the wrong DC and customs is holding another. Work out what has actually arrived and draft the recovery plan.", {"cust": ["Van Leeuwen Logistics", "Ridgeway Cold Chain", "Pecos Distribution"], "n": ["three", "four"]}),
    # product_support
    ("product_support", "easy", "What is the {attr} of the {model}?", {"attr": ["top speed", "turning radius", "IP rating", "weight", "charging time", "lidar range"], "model": ["NB-100", "NB-300"]}),
    ("product_support", "easy", "Does the NB-Dock need {req}?", {"req": ["a dedicated circuit", "a network cable", "floor anchoring", "a firmware licence"]}),
    ("product_support", "easy", "What does the {colour} status light on the robot mean?", {"colour": ["flashing amber", "solid blue", "pulsing white", "solid red"]}),
    ("product_support", "easy", "Which Beacon tier includes {feat}?", {"feat": ["heat maps", "SSO", "the SAP connector", "API access", "custom dashboards", "audit logs"]}),
    ("product_support", "easy", "Can the NB-100 carry {load}?", {"load": ["two totes at once", "a 40 kg box", "liquids in sealed containers", "cardboard cartons without a tote"]}),
    ("product_support", "hard", "We want NB-300s to move pallets between a {t1} chill room and a {t2} ambient dock across a {deg}-degree ramp. Is that feasible, and what site changes would you recommend?", {"t1": ["2°C", "4°C"], "t2": ["25°C", "30°C"], "deg": ["2", "4"]}), 
    ("product_support", "hard", "Our Couriers are hitting {code} errors mostly on {shift} in aisles near the {thing}. Propose likely root causes and an order to test them in.", {"code": ["E-214", "E-305", "E-118"], "shift": ["night shift", "the early shift"], "thing": ["mezzanine", "loading doors", "freezer curtain"]}),
    # smalltalk (always easy)
    ("smalltalk", "easy", "{greet}", {"greet": ["Morning!", "Hiya", "yo", "Good afternoon", "Evening all", "Hey assistant", "Hallo!", "Howdy", "Hi again", "ok I'm back"]}),
    ("smalltalk", "easy", "{thanks}", {"thanks": ["Much appreciated", "Perfect, ta", "brilliant thank you", "Dank je wel", "thx", "Lifesaver, thanks", "Super helpful", "nice one"]}),
    ("smalltalk", "easy", "{chat}", {"chat": ["How's your day going?", "Do you ever sleep?", "What's your favourite robot?", "Are you better than the old helpdesk bot?", "Do you like Mondays?", "What's the weather like in there?", "Can you keep a secret?", "You're funny", "Bye for now", "See you tomorrow", "Have a good weekend", "Sorry, wrong chat", "Testing, testing", "Are you still learning?", "Who built you?", "Is it Friday yet?", "I'm bored", "Say something nice", "Knock knock", "Cheers, bye"]}),
    ("smalltalk", "easy", "What's your name, {who}?", {"who": ["bot", "assistant", "friend", "helper"]}),
    # complex_analysis
    ("complex_analysis", "easy", "Which month had the most tickets in the {dataset} export?", {"dataset": ["Q1 support", "H2 returns"]}),
    ("complex_analysis", "easy", "Give me the headline number from the {report}.", {"report": ["fleet uptime report", "March NPS survey", "Q2 sales summary", "Austin utilisation dashboard"]}),
    ("complex_analysis", "hard", "Using the {src}, identify the three biggest drivers of {metric} at {site} and recommend what to change first.", {"src": ["last 90 days of fleet telemetry", "Q3 incident log", "mission history export"], "metric": ["robot idle time", "missed delivery windows", "battery swaps"], "site": ["Hull", "Dallas", "Antwerp"]}),
    ("complex_analysis", "hard", "Should {cust} lease or buy {n} NB-300s given a {rate}% cost of capital and a {y}-year horizon? Lay out the assumptions.", {"cust": ["Bramley Pharma", "Kade Retail", "Scheldt Freight"], "n": ["6", "10"], "rate": ["7", "9"], "y": ["4", "6"]}),
    ("complex_analysis", "hard", "Write a one-page risk assessment for rolling out Beacon {ver} to {n} customer sites at once versus in waves.", {"ver": ["4.0", "4.2"], "n": ["40", "120"]}),
    ("complex_analysis", "hard", "Cluster these churned customer comments into themes and estimate revenue at risk: {sample}", {"sample": ["'too many E-214 stops', 'price hike', 'slow RMA'", "'dashboard confusing', 'SSO broke', 'need SAP connector'", "'robots too slow on ramps', 'support in Dutch?', 'billing errors'"]}),
    # code_help
    ("code_help", "easy", "What's the base URL of the Beacon {env} API?", {"env": ["production", "sandbox", "EU"]}),
    ("code_help", "easy", "Which header carries the API key for {what}?", {"what": ["Beacon webhooks", "the telemetry endpoint", "the sandbox"]}),
    ("code_help", "easy", "How do I pretty-print JSON in {tool}?", {"tool": ["jq", "Python", "PowerShell", "VS Code"]}),
    ("code_help", "easy", "What does HTTP {code} from Beacon mean?", {"code": ["409", "422", "503"]}),
    ("code_help", "easy", "What's the Python SDK package name for {what}?", {"what": ["Beacon", "the telemetry stream", "Beacon webhooks"]}),
    ("code_help", "easy", "How do I convert a Beacon timestamp like {ts} to local time in Python?", {"ts": ["1718000000", "2025-03-14T09:30:00Z"]}),
    ("code_help", "hard", "Write a {lang} client that pulls robot telemetry every {s} seconds, backs off on 429s and writes {fmt}.", {"lang": ["Python", "TypeScript", "Go"], "s": ["15", "60"], "fmt": ["Parquet files", "rows to Postgres"]}),
    ("code_help", "hard", "This webhook handler sometimes processes the same {ev} event twice under load - how do I make it idempotent? {code}", {"ev": ["mission.completed", "robot.fault"], "code": ["`def handle(e): db.insert(e['id'], e)`", "`app.post('/hook', (req) => save(req.body))`"]}),
    ("code_help", "hard", "Refactor our {what} script so it {goal}; it's {n} lines of nested loops today.", {"what": ["fleet report", "battery audit", "mission export"], "goal": ["runs in under a minute for 5,000 robots", "can be unit tested", "handles time zones correctly"], "n": ["300", "450"]}),
    ("code_help", "hard", "Design the database schema and API endpoints for tracking {thing} across Beacon fleets, including migrations.", {"thing": ["spare-part inventory", "operator certifications", "dock maintenance"]}),
]

INTENT_QUOTA = {  # (easy, hard) counts per intent
    "policy_lookup": (28, 12),
    "it_troubleshooting": (26, 14),
    "pricing_question": (26, 14),
    "order_status": (34, 6),
    "product_support": (26, 14),
    "smalltalk": (40, 0),
    "complex_analysis": (6, 34),
    "code_help": (14, 26),
}
TEST_SHARE = 0.3


def _expand(template: str, slots: dict) -> list[str]:
    out = [template]
    for name, choices in slots.items():
        out = [t.replace("{" + name + "}", c) for t in out for c in choices]
    return out


def generate_intents(rng: random.Random, forbidden: set[str]) -> list[dict]:
    rows = []
    for intent, (n_easy, n_hard) in INTENT_QUOTA.items():
        for difficulty, n in (("easy", n_easy), ("hard", n_hard)):
            pools = [_expand(t, s) for (i, d, t, s) in INTENT_TEMPLATES if i == intent and d == difficulty]
            pools = [[x for x in p if x.lower() not in forbidden] for p in pools]
            for p in pools:
                rng.shuffle(p)
            picked: list[str] = []
            k = 0
            while len(picked) < n:  # round-robin over templates for variety
                pool = pools[k % len(pools)]
                if pool:
                    picked.append(pool.pop())
                elif not any(pools):
                    raise SystemExit(f"not enough distinct {intent}/{difficulty} examples")
                k += 1
            n_test = round(n * TEST_SHARE)
            split_of = ["test"] * n_test + ["train"] * (n - n_test)
            rng.shuffle(split_of)
            for text, split in zip(picked, split_of):
                rows.append({"text": text, "intent": intent, "difficulty": difficulty,
                             "route": "expensive" if difficulty == "hard" else "cheap",
                             "split": split})
    rng.shuffle(rows)
    return [{"id": f"int-{i:04d}", **r} for i, r in enumerate(rows, start=1)]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: beside this script)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    queries = generate_queries(random.Random(SEED))
    forbidden = {q["text"].lower() for q in queries}
    intents = generate_intents(random.Random(SEED + 1), forbidden)
    write_jsonl(args.out / "queries.jsonl", queries)
    write_jsonl(args.out / "intents.jsonl", intents)
    print(f"wrote {len(queries)} queries and {len(intents)} intent examples to {args.out}")


if __name__ == "__main__":
    main()
