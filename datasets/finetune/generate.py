#!/usr/bin/env python3
"""Generate the cited-JSON-answer fine-tuning set for the Northbeam Robotics LoRA exercise.

Target behaviour: given 1-3 context snippets, each tagged with a document id such as
``[doc-travel-2025]``, and a question, the assistant replies with ONLY a compact JSON
object ``{"answer": str, "citations": [doc ids], "confidence": "high"|"low"}``. When the
snippets do not contain the answer it replies with the fixed refusal sentence, no
citations and ``"low"`` confidence.

Usage:
    python datasets/finetune/generate.py            # rewrite the files beside this script
    python datasets/finetune/generate.py --out DIR  # write them into DIR instead

How it is built (seeded, standard library only, byte-for-byte reproducible):
    * Facts are written once as (document id, snippet, questions, answer, keywords).
      Related facts form a *group* (e.g. the NB-100 and NB-300 payloads plus the question
      comparing them). Whole groups are assigned to train / validation / test, so no
      snippet and no question is shared between splits.
    * Answerable examples: the gold snippet(s) plus 0-2 distractor snippets from other
      documents of the same split, shuffled.
    * Unanswerable examples (about 20%): a question whose gold snippet is left out (often
      with a sibling snippet from the same document as a near miss), or a question no
      document covers.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 5150
REFUSAL = "I don't know based on the provided documents."
SYSTEM_PROMPT = (
    "You are Northbeam Robotics' document assistant. Answer using only the context "
    "snippets; each starts with its document id in square brackets. Reply with only a "
    'JSON object: {"answer": string, "citations": [document ids you used], '
    '"confidence": "high" or "low"}. If the context does not contain the answer, reply '
    f'{{"answer": "{REFUSAL}", "citations": [], "confidence": "low"}}.'
)
MAX_USER_CHARS = 700
SPLIT_TARGETS = {"test": 42, "validation": 30}  # minimum answerable examples; rest is train
UNANSWERABLE_PER_ANSWERABLE = 0.25  # 1 in 5 examples overall


def fact(doc: str, snippet: str, questions: list[str], answer: str, keywords: list[str]) -> dict:
    for k in keywords:  # a keyword must be checkable in the reply and findable in the snippet
        assert k in answer and k in snippet, (k, answer, snippet)
    return {"doc": doc, "snippet": snippet, "questions": questions, "answer": answer,
            "keywords": keywords}


def build_groups() -> list[dict]:
    """Return the fact groups: {'facts': [...], 'compare': [...]}."""
    groups: list[dict] = []

    def single(f: dict) -> None:
        groups.append({"facts": [f], "compare": []})

    # --- hotel caps (one document, many near-identical snippets: good near misses)
    hotel = [("London", "£200"), ("Manchester", "£130"), ("Edinburgh", "£140"),
             ("Birmingham", "£120"), ("Amsterdam", "€190"), ("Rotterdam", "€150"),
             ("Brussels", "€160"), ("Paris", "€210"), ("Munich", "€180"),
             ("Austin", "$210"), ("New York", "$320"), ("Chicago", "$260")]
    for i, (city, cap) in enumerate(hotel):
        snippet = (f"Hotel stays in {city} are reimbursed up to {cap} per night, breakfast included."
                   if i % 2 == 0 else
                   f"The nightly accommodation limit for {city} is {cap}; bookings above it need pre-approval.")
        single(fact("doc-travel-2025", snippet,
                    [f"What is the nightly hotel limit in {city}?",
                     f"How much can I spend per night on a hotel in {city}?"],
                    f"The hotel limit in {city} is {cap} per night.", [cap]))

    # --- meal allowances
    meals = [("the UK", "£45"), ("the US", "$75"), ("the Netherlands", "€60"),
             ("Germany", "€58"), ("Belgium", "€55"), ("France", "€62"), ("Ireland", "€57"),
             ("Canada", "C$85")]
    for country, amt in meals:
        single(fact("doc-expenses-2025",
                    f"Staff travelling on business in {country} may claim meals up to {amt} per day, with receipts.",
                    [f"What is the daily meal allowance in {country}?",
                     f"How much can I claim for food per day when travelling in {country}?"],
                    f"The meal allowance in {country} is {amt} per day.", [amt]))

    # --- people / leave
    for f in [
        fact("doc-people-leave-2025", "Full-time employees receive 25 days of annual leave plus public holidays.",
             ["How many days of annual leave do full-time staff get?", "What is the standard holiday entitlement?"],
             "Full-time staff get 25 days of annual leave plus public holidays.", ["25"]),
        fact("doc-people-leave-2025", "Up to 5 unused leave days may be carried over and must be taken by 31 March.",
             ["How many leave days can be carried over?", "By when must carried-over leave be used?"],
             "Up to 5 days can be carried over and must be used by 31 March.", ["5", "31 March"]),
        fact("doc-people-leave-2025", "Paternity leave is 4 weeks at full pay, to be taken within the first year.",
             ["How long is paternity leave?", "Is paternity leave paid, and for how long?"],
             "Paternity leave is 4 weeks at full pay.", ["4 weeks"]),
        fact("doc-people-leave-2025", "Maternity leave is paid in full for 26 weeks, followed by statutory pay.",
             ["How many weeks of maternity leave are fully paid?", "What is the maternity pay policy?"],
             "Maternity leave is fully paid for 26 weeks, then statutory pay applies.", ["26 weeks"]),
        fact("doc-people-sickness", "If you are unwell, tell your line manager before 10:00 and record the absence in PeopleHub.",
             ["What should I do if I'm off sick?", "By what time must I report a sick day?"],
             "Tell your line manager before 10:00 and record it in PeopleHub.", ["10:00", "PeopleHub"]),
        fact("doc-people-sickness", "A fit note is required for sickness absence longer than 7 calendar days.",
             ["When do I need a fit note?", "After how many days of sickness is a fit note required?"],
             "A fit note is needed for absences longer than 7 calendar days.", ["7"]),
        fact("doc-people-benefits", "Every employee has a training budget of £1,000 per year, approved by their manager.",
             ["What is the annual training budget per employee?", "How much can I spend on training each year?"],
             "The training budget is £1,000 per person per year.", ["£1,000"]),
        fact("doc-people-benefits", "Employees get 2 paid volunteering days each year for registered charities.",
             ["How many volunteering days do we get?", "Is volunteering time paid?"],
             "Employees get 2 paid volunteering days a year.", ["2"]),
        fact("doc-people-hybrid", "Hybrid staff may work from home up to 3 days a week by agreement with their manager.",
             ["How many days a week can I work from home?", "What is the work-from-home limit?"],
             "Up to 3 days a week from home, agreed with your manager.", ["3 days"]),
        fact("doc-people-hybrid", "Working from another country is limited to 20 working days per year and needs HR approval.",
             ["How many days can I work from abroad?", "Do I need approval to work from another country?"],
             "Up to 20 working days a year, with HR approval.", ["20"]),
        fact("doc-people-benefits", "Sabbaticals of up to 4 weeks unpaid are available after 7 years of service.",
             ["When can I take a sabbatical?", "How long can a sabbatical be?"],
             "After 7 years' service you can take up to 4 weeks' unpaid sabbatical.", ["7 years", "4 weeks"]),
        fact("doc-expenses-2025", "Expense claims must be submitted in Ledgerly within 60 days of the purchase.",
             ["What is the deadline for expense claims?", "Where and when do I submit expenses?"],
             "Submit claims in Ledgerly within 60 days of the purchase.", ["60 days", "Ledgerly"]),
        fact("doc-expenses-2025", "Mileage in a private car is paid at 45p per mile for the first 10,000 business miles.",
             ["What is the mileage rate for a private car?", "How much per mile can I claim for driving my own car?"],
             "45p per mile for the first 10,000 business miles.", ["45p"]),
        fact("doc-expenses-2025", "Itemised receipts are mandatory for any single expense over £25.",
             ["When is a receipt required?", "Do I need a receipt for a £30 taxi?"],
             "Itemised receipts are required for any expense over £25.", ["£25"]),
    ]:
        single(f)

    # --- IT runbooks
    for f in [
        fact("doc-it-vpn-runbook", "If the VPN drops repeatedly, update GlobalProtect to version 6.2 and select the NB-Secure gateway.",
             ["How do I fix a VPN that keeps disconnecting?", "Which GlobalProtect version should I use?"],
             "Update GlobalProtect to 6.2 and use the NB-Secure gateway.", ["6.2", "NB-Secure"]),
        fact("doc-it-vpn-runbook", "Split tunnelling is disabled; all traffic goes through the VPN while connected.",
             ["Is split tunnelling allowed on the VPN?", "Does all my traffic go through the VPN?"],
             "No, split tunnelling is disabled; all traffic goes through the VPN.", ["disabled"]),
        fact("doc-it-accounts", "Passwords are reset at id.northbeam.example after completing an MFA prompt.",
             ["Where do I reset my password?", "How do I change a forgotten password?"],
             "Reset it at id.northbeam.example after an MFA prompt.", ["id.northbeam.example"]),
        fact("doc-it-accounts", "Passwords must be at least 14 characters long and do not expire unless compromised.",
             ["How long must a password be?", "Do our passwords expire?"],
             "At least 14 characters; they don't expire unless compromised.", ["14"]),
        fact("doc-it-accounts", "After 5 failed sign-in attempts an account is locked for 15 minutes.",
             ["How many failed logins lock an account?", "How long does an account lockout last?"],
             "5 failed attempts lock the account for 15 minutes.", ["5", "15 minutes"]),
        fact("doc-it-accounts", "Moving MFA to a new phone requires an 'MFA re-enrol' ticket; backup codes work in the meantime.",
             ["How do I move MFA to a new phone?", "What do I use for MFA while waiting for a new phone to be set up?"],
             "Raise an 'MFA re-enrol' ticket and use backup codes meanwhile.", ["MFA re-enrol", "backup codes"]),
        fact("doc-it-hardware", "Laptops are replaced every 4 years, or sooner if a repair costs more than half their value.",
             ["How often are laptops replaced?", "When do I get a new laptop?"],
             "Every 4 years, or sooner if repair costs exceed half the laptop's value.", ["4 years"]),
        fact("doc-it-hardware", "For a BitLocker recovery key call the IT desk on extension 4000; never reinstall Windows yourself.",
             ["Who do I call for a BitLocker recovery key?", "What is the IT desk extension?"],
             "Call the IT desk on extension 4000.", ["4000"]),
        fact("doc-it-hardware", "Each employee may request one external monitor and one docking station through the IT portal.",
             ["How many monitors can I request?", "How do I order a docking station?"],
             "One external monitor and one docking station, via the IT portal.", ["one", "IT portal"]),
        fact("doc-it-printing", "The Leeds second-floor printer is out of service under ticket IT-4412; use LDS-PRN-02B instead.",
             ["Which printer should I use on the Leeds second floor?", "Why is the second-floor printer in Leeds not working?"],
             "It is out of service (IT-4412); use LDS-PRN-02B.", ["LDS-PRN-02B"]),
        fact("doc-it-printing", "Print jobs are held for 24 hours and released by tapping your badge at any printer.",
             ["How long are print jobs kept?", "How do I release a print job?"],
             "Jobs are held 24 hours and released by tapping your badge at a printer.", ["24 hours", "badge"]),
        fact("doc-it-access", "Access to the Finance shared drive is approved by the Finance data owner via the IT portal.",
             ["Who approves access to the Finance drive?", "How do I get access to the Finance shared drive?"],
             "Request it in the IT portal; the Finance data owner approves.", ["Finance data owner"]),
        fact("doc-it-access", "Guest Wi-Fi uses daily vouchers issued by reception; there is no shared guest password.",
             ["How do visitors get Wi-Fi access?", "What is the guest Wi-Fi password?"],
             "Visitors get daily vouchers from reception; there is no shared password.", ["vouchers", "reception"]),
        fact("doc-it-access", "Beacon SSO error 403 means the user is not assigned the Beacon app in Okta.",
             ["What does Beacon SSO error 403 mean?", "Why do I get a 403 logging into Beacon?"],
             "The user isn't assigned the Beacon app in Okta.", ["Okta"]),
    ]:
        single(f)

    # --- product specs: one group per attribute, with a comparison question
    specs = [
        ("payload", "carries up to 60 kg", "lifts pallets of up to 1,200 kg", "60 kg", "1,200 kg",
         "What is the maximum payload of the {m}?", "How much weight can the {m} carry?",
         "Which robot has the higher payload, the NB-100 or the NB-300?",
         "The NB-300 (1,200 kg versus 60 kg for the NB-100)."),
        ("speed", "has a top speed of 2.0 m/s", "travels at up to 1.2 m/s", "2.0 m/s", "1.2 m/s",
         "What is the top speed of the {m}?", "How fast can the {m} drive?",
         "Which is faster, the NB-100 or the NB-300?",
         "The NB-100 (2.0 m/s versus 1.2 m/s for the NB-300)."),
        ("runtime", "runs for about 10 hours per charge", "runs for about 8 hours per charge", "10 hours", "8 hours",
         "How long does the {m} run on one charge?", "What is the battery runtime of the {m}?",
         "Which robot runs longer on a charge, the NB-100 or the NB-300?",
         "The NB-100 (about 10 hours versus 8 hours for the NB-300)."),
        ("charge", "recharges fully in 90 minutes", "needs 150 minutes for a full charge", "90 minutes", "150 minutes",
         "How long does the {m} take to charge?", "What is the full charging time of the {m}?",
         "Which robot charges faster, the NB-100 or the NB-300?",
         "The NB-100 (90 minutes versus 150 minutes for the NB-300)."),
        ("incline", "handles ramps of up to 6 degrees", "is limited to ramps of 3 degrees", "6 degrees", "3 degrees",
         "What is the maximum ramp incline for the {m}?", "How steep a ramp can the {m} climb?",
         "Which robot can climb steeper ramps, the NB-100 or the NB-300?",
         "The NB-100 (6 degrees versus 3 degrees for the NB-300)."),
        ("temperature", "operates between -5°C and 40°C", "operates between 0°C and 35°C", "-5°C", "0°C",
         "What is the operating temperature range of the {m}?", "How cold can it be for the {m} to work?",
         "Which robot tolerates colder sites, the NB-100 or the NB-300?",
         "The NB-100 (down to -5°C versus 0°C for the NB-300)."),
        ("weight", "weighs 95 kg unloaded", "weighs 640 kg unloaded", "95 kg", "640 kg",
         "How much does the {m} weigh?", "What is the unloaded weight of the {m}?",
         "Which robot is heavier, the NB-100 or the NB-300?",
         "The NB-300 (640 kg versus 95 kg for the NB-100)."),
        ("ip", "is rated IP54", "is rated IP44", "IP54", "IP44",
         "What is the IP rating of the {m}?", "How well is the {m} protected against dust and water?",
         "Which robot has the better IP rating, the NB-100 or the NB-300?",
         "The NB-100 (IP54 versus IP44 for the NB-300)."),
        ("lidar", "has a lidar range of 25 m", "has a lidar range of 30 m", "25 m", "30 m",
         "What is the lidar range of the {m}?", "How far can the {m}'s lidar see?",
         "Which robot has the longer lidar range, the NB-100 or the NB-300?",
         "The NB-300 (30 m versus 25 m for the NB-100)."),
        ("turning", "turns within a 0.6 m radius", "needs a 1.4 m turning radius", "0.6 m", "1.4 m",
         "What is the turning radius of the {m}?", "How tight can the {m} turn?",
         "Which robot needs more room to turn, the NB-100 or the NB-300?",
         "The NB-300 (1.4 m versus 0.6 m for the NB-100)."),
    ]
    for attr, p100, p300, v100, v300, q1, q2, cq, cans in specs:
        f100 = fact("doc-spec-nb100", f"The NB-100 Courier {p100}.",
                    [q1.format(m="NB-100"), q2.format(m="NB-100 Courier")],
                    f"The NB-100 {p100}.", [v100])
        f300 = fact("doc-spec-nb300", f"The NB-300 Lifter {p300}.",
                    [q1.format(m="NB-300"), q2.format(m="NB-300 Lifter")],
                    f"The NB-300 {p300}.", [v300])
        groups.append({"facts": [f100, f300],
                       "compare": [{"question": cq, "answer": cans, "keywords": [v100, v300]}]})

    # --- NB-Dock, pricing, SLA, tiers
    for f in [
        fact("doc-spec-nbdock", "One NB-Dock can serve up to 4 NB-100 robots in rotation.",
             ["How many robots can share one NB-Dock?", "How many Couriers per charging dock?"],
             "Up to 4 NB-100 robots per NB-Dock.", ["4"]),
        fact("doc-spec-nbdock", "The NB-Dock needs a dedicated 16 A circuit and at least 1 m of clear space in front.",
             ["What power supply does the NB-Dock need?", "How much clearance does an NB-Dock need?"],
             "A dedicated 16 A circuit and 1 m of clear space in front.", ["16 A", "1 m"]),
        fact("doc-spec-nbdock", "NB-Dock firmware updates are pushed from Beacon and install overnight between 01:00 and 04:00.",
             ["When do NB-Dock firmware updates install?", "How is dock firmware updated?"],
             "They are pushed from Beacon and install between 01:00 and 04:00.", ["01:00", "04:00"]),
        fact("doc-pricing-2025", "Beacon Starter costs £19 per robot per month and covers fleets of up to 10 robots.",
             ["How much is Beacon Starter?", "How many robots does Beacon Starter support?"],
             "Beacon Starter is £19 per robot per month, for up to 10 robots.", ["£19"]),
        fact("doc-pricing-2025", "Beacon Pro is £39 per robot per month on annual billing, or £45 billed monthly.",
             ["How much does Beacon Pro cost?", "What is the monthly-billing price of Beacon Pro?"],
             "Beacon Pro is £39 per robot per month annually, or £45 monthly.", ["£39", "£45"]),
        fact("doc-pricing-2025", "Beacon Enterprise is quoted individually, starting at £60 per robot per month.",
             ["What does Beacon Enterprise cost?", "Is there a list price for Beacon Enterprise?"],
             "It is quoted individually, from £60 per robot per month.", ["£60"]),
        fact("doc-pricing-hardware-2025", "The NB-100 Courier lists at £28,500 per unit, excluding VAT.",
             ["What is the list price of an NB-100?", "How much does one Courier robot cost?"],
             "The NB-100 lists at £28,500 excluding VAT.", ["£28,500"]),
        fact("doc-pricing-hardware-2025", "The NB-300 Lifter lists at £74,000 per unit, excluding VAT.",
             ["What is the list price of an NB-300?", "How much does one Lifter robot cost?"],
             "The NB-300 lists at £74,000 excluding VAT.", ["£74,000"]),
        fact("doc-pricing-hardware-2025", "An NB-Dock charging station costs £3,200 including installation.",
             ["How much is an NB-Dock?", "Does the NB-Dock price include installation?"],
             "£3,200 including installation.", ["£3,200"]),
        fact("doc-pricing-discounts", "Orders of 10 or more robots get an 8% discount; 50 or more get 15% with VP Sales sign-off.",
             ["What volume discount applies to 10 robots?", "What discount is given for 50 robots?"],
             "8% from 10 robots, 15% from 50 robots with VP Sales sign-off.", ["8%", "15%"]),
        fact("doc-pricing-warranty", "Extended warranty for the NB-100 costs £2,400 for 3 years or £3,900 for 5 years.",
             ["How much is a 3-year NB-100 warranty?", "What does the 5-year extended warranty cost?"],
             "£2,400 for 3 years or £3,900 for 5 years.", ["£2,400", "£3,900"]),
        fact("doc-beacon-sla-2025", "Beacon uptime commitments are 99.5% for Starter, 99.9% for Pro and 99.95% for Enterprise.",
             ["What uptime does Beacon Pro guarantee?", "What is the Beacon SLA for Enterprise customers?"],
             "99.5% Starter, 99.9% Pro, 99.95% Enterprise.", ["99.9%", "99.95%"]),
        fact("doc-beacon-sla-2025", "Priority-1 incidents get a first response within 30 minutes on Enterprise and 2 hours on Pro.",
             ["How fast is the response to a P1 incident on Pro?", "What is the Enterprise P1 response time?"],
             "30 minutes on Enterprise, 2 hours on Pro.", ["30 minutes", "2 hours"]),
        fact("doc-beacon-api", "The Beacon API allows 600 requests per minute per token and returns 429 with Retry-After beyond that.",
             ["What is the Beacon API rate limit?", "What happens when I exceed the Beacon API limit?"],
             "600 requests per minute per token; beyond that it returns 429 with Retry-After.", ["600", "429"]),
        fact("doc-beacon-api", "List endpoints return 100 items per page; pass next_cursor as the cursor parameter to continue.",
             ["How do I paginate Beacon API results?", "How many items does a Beacon list call return?"],
             "100 items per page; pass next_cursor as the cursor parameter.", ["100", "next_cursor"]),
        fact("doc-beacon-integrations", "A certified SAP EWM connector is included in Beacon Enterprise; other WMS use the REST API.",
             ["Does Beacon integrate with SAP EWM?", "Which tier includes the SAP connector?"],
             "Yes, a certified SAP EWM connector is included in Enterprise.", ["SAP EWM", "Enterprise"]),
    ]:
        single(f)

    # --- more travel, people, support, security and Beacon facts
    for f in [
        fact("doc-travel-2025", "Rail journeys under 3 hours are standard class; first class is allowed for longer journeys.",
             ["Can I travel first class by train?", "When is first-class rail allowed?"],
             "Only for rail journeys of 3 hours or more; shorter trips are standard class.", ["3 hours"]),
        fact("doc-travel-2025", "Flights longer than 6 hours may be booked in business class; shorter flights are economy.",
             ["Can I fly business class?", "What cabin class is allowed on a 4-hour flight?"],
             "Business class only on flights over 6 hours; shorter flights are economy.", ["6 hours"]),
        fact("doc-travel-2025", "Flights must be booked through TravelDesk at least 14 days before departure.",
             ["How far ahead must flights be booked?", "Which tool do I use to book flights?"],
             "Through TravelDesk, at least 14 days before departure.", ["TravelDesk", "14 days"]),
        fact("doc-expenses-2025", "Taxis are reimbursed after 21:00 or when carrying equipment over 10 kg.",
             ["When can I claim a taxi?", "Are late-night taxis reimbursed?"],
             "After 21:00, or when carrying equipment over 10 kg.", ["21:00"]),
        fact("doc-people-onboarding", "New starters collect their laptop from IT at 09:30 on their first day.",
             ["When do new starters get their laptop?", "What time should a new starter go to IT?"],
             "At 09:30 on their first day, from IT.", ["09:30"]),
        fact("doc-people-onboarding", "Probation lasts 6 months and can be extended once by up to 3 months.",
             ["How long is probation?", "Can probation be extended?"],
             "6 months, extendable once by up to 3 months.", ["6 months"]),
        fact("doc-people-onboarding", "After probation the notice period is 1 month for staff and 3 months for managers.",
             ["What is the notice period for managers?", "How much notice do staff have to give?"],
             "1 month for staff and 3 months for managers.", ["1 month", "3 months"]),
        fact("doc-people-benefits", "Eye tests for screen users are reimbursed up to £40 every 2 years.",
             ["Are eye tests reimbursed?", "How much can I claim for an eye test?"],
             "Up to £40 every 2 years for screen users.", ["£40"]),
        fact("doc-support-rma", "Faulty hardware is returned via an RMA in the Beacon portal; a prepaid label is emailed within 1 working day.",
             ["How do I return faulty hardware?", "How quickly do I get a returns label?"],
             "Raise an RMA in the Beacon portal; a prepaid label arrives within 1 working day.", ["RMA", "1 working day"]),
        fact("doc-support-rma", "Replacement parts ship within 2 working days in the UK and 4 working days in the US.",
             ["How long do replacement parts take in the US?", "When will a UK replacement part ship?"],
             "2 working days in the UK and 4 working days in the US.", ["2 working days", "4 working days"]),
        fact("doc-security-incidents", "Report suspected phishing with the Report button in Outlook and do not forward the email.",
             ["How do I report a phishing email?", "Should I forward a suspicious email to IT?"],
             "Use the Report button in Outlook; don't forward it.", ["Report button"]),
        fact("doc-security-incidents", "A lost or stolen laptop must be reported to the IT desk within 1 hour of noticing.",
             ["What do I do if my laptop is stolen?", "How soon must a lost laptop be reported?"],
             "Report it to the IT desk within 1 hour.", ["1 hour"]),
        fact("doc-beacon-tiers", "Heat maps and single sign-on are included from Beacon Pro upwards, not in Starter.",
             ["Does Beacon Starter include SSO?", "Which Beacon tiers have heat maps?"],
             "Heat maps and SSO come with Pro and Enterprise, not Starter.", ["Pro"]),
        fact("doc-beacon-tiers", "Beacon Enterprise has no robot limit and includes a sandbox environment.",
             ["Is there a robot limit on Beacon Enterprise?", "Which tier includes a sandbox?"],
             "Enterprise has no robot limit and includes a sandbox.", ["sandbox"]),
        fact("doc-spec-nb100c", "The NB-100C cold-store variant of the Courier operates down to -25°C.",
             ["How cold can the NB-100C operate?", "Is there a Courier for freezers?"],
             "The NB-100C operates down to -25°C.", ["-25°C"]),
        fact("doc-it-software", "Software outside the IT catalogue needs a Security review that takes up to 5 working days.",
             ["How long does a software security review take?", "Can I install software that isn't in the catalogue?"],
             "Yes, after a Security review of up to 5 working days.", ["5 working days"]),
    ]:
        single(f)

    # --- support error codes
    codes = [("E-101", "drive motor overcurrent", "remove any debris from the wheels and restart"),
             ("E-118", "bumper pressed for over 10 seconds", "clear the obstruction and press resume"),
             ("E-214", "lidar window obstructed", "clean the sensor window with a dry cloth"),
             ("E-241", "battery over temperature", "let the robot cool and check the dock fan"),
             ("E-305", "localisation lost", "drive the robot to a known marker and relocalise in Beacon"),
             ("E-312", "map version mismatch", "re-sync the site map from Beacon"),
             ("E-420", "Wi-Fi roaming timeout", "check access point coverage along the route"),
             ("E-433", "mission rejected by Beacon", "check the mission's zone permissions"),
             ("E-507", "lift actuator fault", "stop using the robot and raise an RMA"),
             ("E-512", "pallet not detected", "re-seat the pallet and retry the lift"),
             ("E-601", "dock contact failure", "clean the charging contacts on robot and dock"),
             ("E-615", "firmware checksum error", "reinstall firmware from Beacon"),
             ("E-702", "emergency stop engaged", "release the e-stop and confirm in Beacon"),
             ("E-719", "safety scanner fault", "power-cycle the robot; raise a ticket if it repeats"),
             ("E-808", "clock drift detected", "check the site NTP server"),
             ("E-822", "certificate expired", "renew the robot certificate in Beacon")]
    for code, meaning, fix in codes:
        single(fact("doc-support-error-codes", f"Error {code} means {meaning}; to fix it, {fix}.",
                    [f"What does error {code} mean?", f"How do I fix error {code} on a robot?"],
                    f"{code} means {meaning}; {fix}.", [code, meaning.split()[0]]))

    # --- facilities
    for f in [
        fact("doc-facilities-leeds", "Leeds HQ is open 07:00-20:00 on weekdays and 09:00-13:00 on Saturdays.",
             ["What are the Leeds office opening hours?", "Is the Leeds office open on Saturdays?"],
             "Weekdays 07:00-20:00 and Saturdays 09:00-13:00.", ["07:00", "20:00"]),
        fact("doc-facilities-leeds", "Leeds has 60 staff parking spaces, booked through the Deskly app.",
             ["How do I book parking in Leeds?", "How many parking spaces does the Leeds office have?"],
             "60 spaces, booked in the Deskly app.", ["60", "Deskly"]),
        fact("doc-facilities-leeds", "Registered dogs are welcome in the Leeds office on Fridays only.",
             ["Can I bring my dog to the Leeds office?", "Which day are dogs allowed in Leeds?"],
             "Yes, registered dogs on Fridays only.", ["Fridays"]),
        fact("doc-facilities-leeds", "The Leeds canteen serves hot food from 11:30 to 14:00.",
             ["When is the Leeds canteen open?", "What time is lunch served in Leeds?"],
             "Hot food is served from 11:30 to 14:00.", ["11:30", "14:00"]),
        fact("doc-facilities-rotterdam", "The Rotterdam office is open 07:30-19:00, Monday to Friday.",
             ["What are the Rotterdam office hours?", "When does the Rotterdam office close?"],
             "07:30-19:00, Monday to Friday.", ["07:30", "19:00"]),
        fact("doc-facilities-rotterdam", "Rotterdam has covered bike storage for 40 bikes in the basement.",
             ["Is there bike parking in Rotterdam?", "How many bikes fit in the Rotterdam bike storage?"],
             "Covered basement storage for 40 bikes.", ["40"]),
        fact("doc-facilities-rotterdam", "Visitors to Rotterdam must be registered by their host before 17:00 the day before.",
             ["How do I register a visitor in Rotterdam?", "What is the visitor deadline in Rotterdam?"],
             "The host registers them before 17:00 the day before.", ["17:00"]),
        fact("doc-facilities-austin", "The Austin office is open 08:00-18:00 Central Time on weekdays.",
             ["What are the Austin office hours?", "When does the Austin office open?"],
             "08:00-18:00 Central Time on weekdays.", ["08:00", "18:00"]),
        fact("doc-facilities-austin", "Only service animals are allowed in the Austin office.",
             ["Are pets allowed in the Austin office?", "Can I bring my dog to work in Austin?"],
             "No, only service animals are allowed.", ["service animals"]),
        fact("doc-facilities-austin", "Austin staff get free garage parking on level P2 with a Northbeam badge.",
             ["Where do Austin staff park?", "Is parking free in Austin?"],
             "Free garage parking on level P2 with a badge.", ["P2"]),
    ]:
        single(f)

    # --- data retention and legal
    for f in [
        fact("doc-data-retention-2024", "CCTV footage is kept for 30 days unless needed for an investigation.",
             ["How long is CCTV footage kept?", "What is the CCTV retention period?"],
             "30 days, unless needed for an investigation.", ["30 days"]),
        fact("doc-data-retention-2024", "Support tickets are retained for 3 years after closure.",
             ["How long are support tickets kept?", "When are closed tickets deleted?"],
             "3 years after closure.", ["3 years"]),
        fact("doc-data-retention-2024", "CVs of unsuccessful candidates are deleted after 6 months.",
             ["How long do we keep CVs of rejected candidates?", "When are candidate CVs deleted?"],
             "They are deleted after 6 months.", ["6 months"]),
        fact("doc-data-retention-2024", "Robot telemetry is kept for 13 months in Beacon and then aggregated.",
             ["How long is robot telemetry stored?", "What happens to telemetry after 13 months?"],
             "13 months in Beacon, then aggregated.", ["13 months"]),
        fact("doc-data-retention-2024", "Financial records are kept for 7 years to meet tax rules.",
             ["How long are financial records kept?", "What is the retention period for invoices?"],
             "7 years.", ["7 years"]),
        fact("doc-legal-contracts", "Contracts worth more than £250,000 must be signed by a director.",
             ["Who must sign contracts over £250,000?", "What is the director signing threshold?"],
             "A director must sign contracts worth more than £250,000.", ["£250,000", "director"]),
        fact("doc-legal-contracts", "Standard mutual NDAs last 3 years and are issued by Legal within 2 working days.",
             ["How long does a standard NDA last?", "How quickly can Legal issue an NDA?"],
             "3 years; Legal issues them within 2 working days.", ["3 years", "2 working days"]),
        fact("doc-legal-gifts", "Gifts from suppliers worth up to £100 must be logged; anything above must be declined or handed to Legal.",
             ["What is the supplier gift limit?", "Can I keep a £150 gift from a supplier?"],
             "Up to £100 logged; above that decline it or hand it to Legal.", ["£100"]),
    ]:
        single(f)
    return groups


OUT_OF_SCOPE = [
    "What is the Wi-Fi password for the Austin canteen?",
    "Who won the 2024 Northbeam hackathon?",
    "How much does the NB-500 cost?",
    "When is the next company all-hands?",
    "What is the hotel limit in Tokyo?",
    "Does Beacon support Oracle WMS?",
    "What is the meal allowance in Japan?",
    "How many car parking spaces are there in Rotterdam?",
    "What is the bereavement leave policy?",
    "What does error E-999 mean?",
    "How long is the NB-Dock warranty?",
    "Can I expense a gym membership?",
    "What is the noise level of the NB-300 in decibels?",
    "Who is the CEO of Northbeam?",
    "Is there a Beacon mobile app?",
    "What is the dress code in Leeds?",
    "How often are fire drills held in Austin?",
    "What is Beacon's price in Australian dollars?",
    "How many robots did we ship last year?",
    "Does the NB-100 work outdoors in rain?",
    "What is the pension contribution rate?",
    "Which airline do we use for Austin flights?",
]

SANITY = [
    ("What is the capital of France?", ["Paris"]),
    ("What is 7 times 8?", ["56"]),
    ("Translate 'thank you' into Spanish.", ["gracias"]),
    ("What colour do you get by mixing blue and yellow?", ["green"]),
    ("How many days are in a week?", ["7", "seven"]),
    ("Name the largest planet in our solar system.", ["Jupiter"]),
    ("What is the opposite of 'hot'?", ["cold"]),
    ("Who wrote 'Romeo and Juliet'?", ["Shakespeare"]),
    ("What is the chemical symbol for water?", ["H2O"]),
    ("Complete the sequence: 2, 4, 6, 8, ...", ["10", "ten"]),
    ("What is the capital of Japan?", ["Tokyo"]),
    ("How many legs does a spider have?", ["8", "eight"]),
    ("What is the boiling point of water in Celsius at sea level?", ["100"]),
    ("Which ocean lies between Europe and North America?", ["Atlantic"]),
    ("What is the plural of 'mouse'?", ["mice"]),
    ("Say hello in French.", ["bonjour", "salut"]),
    ("What is 15 plus 27?", ["42"]),
    ("Which animal is known as the king of the jungle?", ["lion"]),
    ("What gas do plants absorb from the air?", ["carbon dioxide", "CO2"]),
    ("Write a Python expression that returns the length of a list called items.", ["len(items)"]),
    ("How many minutes are in an hour?", ["60", "sixty"]),
    ("What is the capital of the Netherlands?", ["Amsterdam"]),
    ("What is the square root of 81?", ["9", "nine"]),
    ("In which country is the city of Leeds?", ["England", "UK", "United Kingdom"]),
    # 25-48: added so that one changed reply moves the rate by about 2 points, not 4
    ("What is the capital of Italy?", ["Rome"]),
    ("What is 9 times 6?", ["54"]),
    ("Translate 'cat' into French.", ["chat"]),
    ("What colour is the sky on a clear day?", ["blue"]),
    ("How many months are in a year?", ["12", "twelve"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("What is the opposite of 'up'?", ["down"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "da Vinci"]),
    ("What is the freezing point of water in Celsius?", ["0", "zero"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("How many sides does a triangle have?", ["3", "three"]),
    ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What is the plural of 'child'?", ["children"]),
    ("Say goodbye in Spanish.", ["adios", "adiós", "hasta"]),
    ("What is 100 minus 37?", ["63"]),
    ("Which animal is the largest mammal on Earth?", ["blue whale", "whale"]),
    ("What do bees make?", ["honey"]),
    ("Write a Python statement that prints the word hello.", ["print("]),
    ("How many hours are in a day?", ["24", "twenty-four"]),
    ("What is the capital of Spain?", ["Madrid"]),
    ("What is 12 divided by 4?", ["3", "three"]),
    ("Which star is at the centre of our solar system?", ["Sun"]),
    ("What is the capital of Russia?", ["Moscow"]),
    ("What language is mainly spoken in Brazil?", ["Portuguese"]),
]

# General prompts for rehearsal: during LoRA training the base model's own greedy replies
# to these are mixed into the task examples, so that the adapter keeps answering plain
# questions plainly. No prompt here repeats a sanity prompt or asks the same fact.
REHEARSAL = [
    "What is the capital of Canada?",
    "What is 4 times 5?",
    "Translate 'good morning' into German.",
    "What colour are bananas when they are ripe?",
    "How many continents are there?",
    "Name the closest planet to the Sun.",
    "What is the opposite of 'fast'?",
    "Who wrote 'Pride and Prejudice'?",
    "What is the chemical symbol for gold?",
    "Complete the sequence: 5, 10, 15, 20, ...",
    "How many wheels does a bicycle have?",
    "Which is the longest river in Africa?",
    "What is the plural of 'foot'?",
    "Say thank you in German.",
    "What is 20 plus 23?",
    "Which animal is famous for having a long neck?",
    "What gas do humans breathe out?",
    "Write a Python expression that adds 2 and 3.",
    "How many seconds are in a minute?",
    "What is the capital of Australia?",
    "What is half of 50?",
    "Which continent is Egypt in?",
    "Give me a word that rhymes with 'cat'.",
    "What is the main ingredient of guacamole?",
    "Explain in one sentence what a noun is.",
    "Suggest a name for a pet goldfish.",
    "Write one sentence about the weather in autumn.",
    "Name some fruits.",
    "What does a thermometer measure?",
    "How do you say 'yes' in Italian?",
    "What is the tallest mountain in the world?",
    "What is the past tense of 'run'?",
    "How many players are on a football team on the pitch?",
    "What is the capital of Egypt?",
    "Name a primary colour.",
    "What is 3 squared?",
]


def cited(answer: str, citations: list[str], confidence: str) -> str:
    return json.dumps({"answer": answer, "citations": citations, "confidence": confidence},
                      ensure_ascii=False, separators=(",", ":"))


def user_message(snippets: list[tuple[str, str]], question: str) -> str:
    ctx = "\n".join(f"[{doc}] {text}" for doc, text in snippets)
    return f"Context:\n{ctx}\n\nQuestion: {question}"


def pick_distractors(rng: random.Random, pool: list[dict], exclude_docs: set[str],
                     exclude_snippets: set[str], k: int) -> list[dict]:
    """Up to k facts from pool, each from a different document not in exclude_docs."""
    candidates = [f for f in pool if f["doc"] not in exclude_docs and f["snippet"] not in exclude_snippets]
    rng.shuffle(candidates)
    chosen, docs = [], set(exclude_docs)
    for f in candidates:
        if len(chosen) == k:
            break
        if f["doc"] not in docs:
            chosen.append(f)
            docs.add(f["doc"])
    return chosen


def make_example(rng: random.Random, gold: list[dict], pool: list[dict], question: str,
                 answer: str | None, keywords: list[str], n_distract: int,
                 near_miss: dict | None = None) -> dict:
    """Build one chat example; answer None means unanswerable."""
    snippets = [(f["doc"], f["snippet"]) for f in gold]
    if near_miss is not None:
        snippets.append((near_miss["doc"], near_miss["snippet"]))
    used_docs = {d for d, _ in snippets}
    excl = {f["snippet"] for f in gold} | ({near_miss["snippet"]} if near_miss else set())
    for f in pick_distractors(rng, pool, used_docs, excl, n_distract):
        snippets.append((f["doc"], f["snippet"]))
    rng.shuffle(snippets)
    while len(user_message(snippets, question)) >= MAX_USER_CHARS and len(snippets) > len(gold) + (near_miss is not None):
        # drop a distractor (never a gold snippet)
        gold_docs = {f["doc"] for f in gold} | ({near_miss["doc"]} if near_miss else set())
        for i in range(len(snippets) - 1, -1, -1):
            if snippets[i][0] not in gold_docs:
                del snippets[i]
                break
    user = user_message(snippets, question)
    assert len(user) < MAX_USER_CHARS, user
    if answer is None:
        assistant = cited(REFUSAL, [], "low")
        meta = {"answerable": False, "gold_citations": [], "gold_answer_keywords": []}
    else:
        # cite in the order the documents appear in the context
        cites = [d for d, _ in snippets if d in {f["doc"] for f in gold}]
        assistant = cited(answer, cites, "high")
        meta = {"answerable": True, "gold_citations": cites, "gold_answer_keywords": keywords}
    return {"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}],
            "meta": meta}


def n_answerable(group: dict) -> int:
    return sum(len(f["questions"]) for f in group["facts"]) + len(group["compare"])


def assign_splits(rng: random.Random, groups: list[dict]) -> dict[str, list[dict]]:
    order = groups[:]
    rng.shuffle(order)
    splits: dict[str, list[dict]] = {"test": [], "validation": [], "train": []}
    counts = {"test": 0, "validation": 0}
    for g in order:
        for name in ("test", "validation"):
            if counts[name] < SPLIT_TARGETS[name]:
                splits[name].append(g)
                counts[name] += n_answerable(g)
                break
        else:
            splits["train"].append(g)
    return splits


def build_split(rng: random.Random, name: str, groups: list[dict], oos: list[str]) -> list[dict]:
    pool = [f for g in groups for f in g["facts"]]
    rows = []
    for g in groups:
        for f in g["facts"]:
            for q in f["questions"]:
                k = rng.choices([0, 1, 2], weights=[2, 4, 4])[0]
                rows.append(make_example(rng, [f], pool, q, f["answer"], f["keywords"], k))
        for c in g["compare"]:
            rows.append(make_example(rng, g["facts"], pool, c["question"], c["answer"],
                                     c["keywords"], rng.choice([0, 1])))
    n_unans = round(len(rows) * UNANSWERABLE_PER_ANSWERABLE)
    n_oos = min(len(oos), max(1, n_unans // 4))
    # near misses: ask about a fact, show a sibling from the same document instead
    facts = pool[:]
    rng.shuffle(facts)
    for f in facts[: n_unans - n_oos]:
        siblings = [s for s in pool if s["doc"] == f["doc"] and s is not f]
        near = rng.choice(siblings) if siblings and rng.random() < 0.7 else None
        others = [s for s in pool if s is not f]
        q = rng.choice(f["questions"])
        rows.append(make_example(rng, [], others, q, None, [], rng.choice([1, 2]), near_miss=near))
    for q in oos[:n_oos]:
        rows.append(make_example(rng, [], pool, q, None, [], rng.choice([1, 2, 3])))
    rng.shuffle(rows)
    prefix = {"train": "ft-train", "validation": "ft-val", "test": "ft-test"}[name]
    return [{"id": f"{prefix}-{i:04d}", **r} for i, r in enumerate(rows, start=1)]


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.invalid/northbeam/finetune/cited-answer.schema.json",
    "title": "CitedAnswer",
    "description": "The only reply the fine-tuned assistant may give: an answer grounded in the "
                   "context snippets, the ids of the snippets used, and a confidence flag.",
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 1,
                   "description": f"Short answer, or exactly \"{REFUSAL}\" when the context lacks it."},
        "citations": {"type": "array", "uniqueItems": True,
                      "items": {"type": "string", "pattern": "^doc-[a-z0-9]+(-[a-z0-9]+)*$"},
                      "description": "Ids of the context snippets the answer relies on; empty for a refusal."},
        "confidence": {"type": "string", "enum": ["high", "low"]},
    },
    "required": ["answer", "citations", "confidence"],
    "additionalProperties": False,
}


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
    rng = random.Random(SEED)
    groups = build_groups()
    splits = assign_splits(rng, groups)
    oos = OUT_OF_SCOPE[:]
    rng.shuffle(oos)
    oos_parts = {"test": oos[:6], "validation": oos[6:10], "train": oos[10:]}
    for name in ("train", "validation", "test"):
        rows = build_split(rng, name, splits[name], oos_parts[name])
        write_jsonl(args.out / f"{name}.jsonl", rows)
        print(f"{name}: {len(rows)} examples")
    sanity = [{"id": f"sanity-{i:02d}", "messages": [{"role": "user", "content": p}],
               "expected_keywords": kw} for i, (p, kw) in enumerate(SANITY, start=1)]
    write_jsonl(args.out / "sanity.jsonl", sanity)
    rehearsal = [{"id": f"rehearsal-{i:02d}", "messages": [{"role": "user", "content": p}]}
                 for i, p in enumerate(REHEARSAL, start=1)]
    write_jsonl(args.out / "rehearsal.jsonl", rehearsal)
    with open(args.out / "schema.json", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(SCHEMA, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
