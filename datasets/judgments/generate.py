#!/usr/bin/env python3
"""Assemble judgments.jsonl: human-labelled RAG answers for calibrating an LLM judge.

Unlike the other sets, the cases here are written by hand (below, as data): each
*scenario* is one question with its retrieved context and a reference answer, followed
by several candidate answers, each labelled for faithfulness and correctness with a
rationale and a failure mode. The script only flattens, numbers and orders them
(seeded shuffle), so ``python datasets/judgments/generate.py`` is byte-for-byte stable.

Usage:
    python datasets/judgments/generate.py            # rewrite judgments.jsonl beside this script
    python datasets/judgments/generate.py --out DIR  # write it into DIR instead

Labelling rules (also in README.md):
    faithfulness = 1 iff every factual claim in the answer is supported by the context
        (a refusal makes no claim, so it is faithful; arithmetic on context numbers counts
        as supported).
    correctness = 1 iff the answer agrees with the reference answer on every key fact the
        question asks for, omitting none of them (extra words are not penalised).
In a scenario marked ``pair``, the first two answers share a ``pair_id``; the labels of
the two always differ, and the one with the higher (correctness, faithfulness) is better.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 303
REFUSAL = "I don't know based on the provided documents."


def A(mode: str | None, faith: int, correct: int, answer: str, why: str) -> dict:
    return {"failure_mode": mode, "faithfulness": faith, "correctness": correct,
            "answer": answer, "rationale": why}


def S(question: str, context: str, reference: str, answers: list[dict], pair: bool = False) -> dict:
    return {"question": question, "context": context, "reference": reference,
            "answers": answers, "pair": pair}


SCENARIOS: list[dict] = [
    S("What's the hotel limit in London?",
      "[doc-travel-2025] Hotel stays in London are reimbursed up to £200 per night, breakfast included. Bookings above the cap need line-manager pre-approval.",
      "£200 per night including breakfast; anything above needs line-manager pre-approval.",
      [A(None, 1, 1, "£200 a night, breakfast included.", "States the cap exactly as the context and reference do."),
       A("wrong_number", 0, 0, "The London cap is £250 per night.", "The context says £200; £250 is neither supported nor correct."),
       A("verbose_but_right", 1, 1,
         "Great question! Travel costs can be confusing, so let me walk you through it. According to the 2025 travel policy, "
         "hotel stays in London are reimbursed up to £200 per night, and that figure already includes breakfast, so you "
         "shouldn't claim breakfast separately. If the only hotel you can find costs more than that, you'll need to get "
         "pre-approval from your line manager before you book. In short: up to £200 a night is fine, above that ask first.",
         "Long and chatty, but every claim is in the context and the key figure matches the reference.")],
      pair=True),
    S("What is the daily meal allowance in the UK?",
      "[doc-expenses-2023] UK meal allowance: staff may claim up to £40 per day, with receipts.",
      "£45 per day with receipts (2025 expenses policy).",
      [A("wrong_number", 1, 0, "Up to £40 per day, with receipts.",
         "Faithful to the retrieved 2023 document, but that document is outdated; the current allowance is £45."),
       A("unsupported_claim", 0, 1, "It's £45 a day under the 2025 policy, receipts required.",
         "Matches the reference, but the context only supports £40; the £45 figure comes from outside the context.")]),
    S("Can an NB-100 carry an 80 kg load?",
      "[doc-spec-nb100] The NB-100 Courier carries totes up to 60 kg and runs for about 10 hours per charge.",
      "No. The NB-100's maximum payload is 60 kg.",
      [A(None, 1, 1, "No - its maximum payload is 60 kg.", "Correct refusal of the load, grounded in the 60 kg figure."),
       A("contradicts_context", 0, 0, "Yes, the NB-100 can handle 80 kg comfortably.", "Directly contradicts the 60 kg limit in the context."),
       A("wrong_number", 0, 0,
         "Yes. The NB-100 Courier is designed for heavy tote work and its rated payload is 100 kg, so an 80 kg load is within "
         "spec. You should still balance the load in the tote and avoid stacking above the rim, and if you run it at the top "
         "of its range you can expect the 10-hour battery life to be a little shorter.",
         "Long and plausible, but the 100 kg payload is invented and the conclusion is wrong; only the 10-hour figure is supported.")],
      pair=True),
    S("How much annual leave do I get after five years?",
      "[doc-people-leave-2025] Full-time employees receive 25 days of annual leave plus public holidays. After five years of service this rises to 27 days.",
      "27 days plus public holidays.",
      [A("wrong_number", 0, 0, "25 days plus public holidays.",
         "Ignores the five-year rule in the same snippet; claiming 25 days after five years is not what the context says."),
       A(None, 1, 1, "27 days, plus public holidays.", "Uses the five-year rule correctly."),
       A("verbose_but_right", 1, 1,
         "The standard entitlement for full-time employees is 25 days of annual leave plus public holidays. However, you've "
         "asked about the position after five years of service, and the leave policy says that the entitlement increases "
         "at that point. So once you have completed five years, you get 27 days of annual leave, and public holidays come on "
         "top of that.",
         "Wordy but accurate and fully grounded.")],
      pair=True),
    S("My VPN keeps dropping, what should I do?",
      "[doc-it-vpn-runbook] If the VPN drops repeatedly, update GlobalProtect to version 6.2 and select the NB-Secure gateway. If drops continue, raise a ticket including your home router model.",
      "Update GlobalProtect to 6.2 and use the NB-Secure gateway; if it still drops, raise a ticket with your router model.",
      [A("incomplete", 1, 0, "Update GlobalProtect.", "True as far as it goes, but omits the version, the gateway and the escalation step."),
       A(None, 1, 1, "Update GlobalProtect to 6.2 and switch to the NB-Secure gateway. If it still drops, raise a ticket with your router model.",
         "Covers every step in the runbook."),
       A("unsupported_claim", 0, 0, "Restart your router and disable IPv6 - that's the known fix for our VPN.",
         "Neither step appears in the context and it misses the documented fix.")],
      pair=True),
    S("What's the Wi-Fi password for the Leeds canteen?",
      "[doc-facilities-leeds] Leeds HQ is open 07:00-20:00 on weekdays and 09:00-13:00 on Saturdays. The canteen serves hot food from 11:30 to 14:00.",
      "The provided documents do not say.",
      [A("correct_refusal", 1, 1, REFUSAL, "Nothing in the context mentions Wi-Fi, so declining is right."),
       A("unsupported_claim", 0, 0, "The canteen Wi-Fi password is NorthbeamGuest2025.", "A fabricated credential; nothing in the context supports it.")],
      pair=True),
    S("What does Beacon Pro cost if we pay monthly?",
      "[doc-pricing-2025] Beacon Pro is £39 per robot per month on annual billing, or £45 billed monthly.",
      "£45 per robot per month.",
      [A("wrong_refusal", 1, 0, REFUSAL, "The context states the monthly price; refusing is unhelpful although it claims nothing false."),
       A(None, 1, 1, "£45 per robot per month.", "Exactly the monthly-billing price."),
       A("wrong_number", 0, 0, "£39 per robot per month.", "That is the annual-billing price; for monthly billing the context says £45.")],
      pair=True),
    S("What is the NB-300's payload?",
      "[doc-spec-nb300] The NB-300 Lifter travels at up to 1.2 m/s and needs a 1.4 m turning radius.",
      "1,200 kg.",
      [A("unsupported_claim", 0, 1, "The NB-300 can lift up to 1,200 kg.",
         "Right according to the reference, but the retrieved snippet only covers speed and turning radius."),
       A("wrong_number", 0, 0, "About 2,000 kg.", "Unsupported by the context and wrong.")]),
    S("A supplier sent me a £150 hamper. Can I keep it?",
      "[doc-legal-gifts] Gifts from suppliers worth up to £100 must be logged in the gift register; anything above must be declined or handed to Legal.",
      "No. It is over the £100 limit, so decline it or hand it to Legal.",
      [A(None, 1, 1, "No. It's over the £100 limit, so decline it or hand it to Legal.", "Applies the threshold correctly."),
       A("contradicts_context", 0, 0, "Yes, just log it in the gift register.", "Logging only applies up to £100; for £150 the context says decline or hand to Legal."),
       A("verbose_but_right", 1, 1,
         "Unfortunately not. The gifts policy distinguishes between small gifts and larger ones. Anything from a supplier "
         "worth up to £100 can be kept as long as you record it in the gift register. Your hamper is worth £150, which is "
         "above that threshold, so the rule is that you must either decline it politely or hand it over to the Legal team, "
         "who will decide what happens to it.",
         "Long but faithful and correct.")],
      pair=True),
    S("How long do I have to submit an expense claim?",
      "[doc-expenses-2022] Expense claims must be submitted within 90 days of the purchase.",
      "Within 60 days of the purchase, in Ledgerly (2025 policy).",
      [A("wrong_number", 1, 0, "Within 90 days of the purchase.", "Faithful to the 2022 snippet, which is out of date; the deadline is now 60 days."),
       A("wrong_number", 1, 0,
         "You have 90 days from the date of purchase to submit your claim. It's a good idea not to leave it until the last "
         "minute, but as long as the claim is in within those 90 days it will be accepted according to the expenses policy.",
         "Long, faithful to the stale document and still wrong; the advice not to leave it late is not a factual claim.")]),
    S("What uptime and P1 response time does a Beacon Pro customer get?",
      "[doc-beacon-sla-2025] Beacon uptime commitments are 99.5% for Starter, 99.9% for Pro and 99.95% for Enterprise. Priority-1 incidents get a first response within 30 minutes on Enterprise and 2 hours on Pro.",
      "99.9% uptime and a first response to P1 incidents within 2 hours.",
      [A("incomplete", 1, 0, "99.9% uptime.", "Correct uptime but the P1 response time, which was asked for, is missing."),
       A(None, 1, 1, "99.9% uptime, and P1 incidents get a first response within 2 hours.", "Both parts, both right."),
       A("wrong_number", 0, 0, "99.95% uptime and a 30-minute P1 response.", "Those are the Enterprise figures, not Pro."),
       A("verbose_but_right", 1, 1,
         "Here is how the Beacon SLA works for the Pro tier. The uptime commitment depends on the tier: Starter gets 99.5%, "
         "Pro gets 99.9%, and Enterprise gets 99.95%. For support, priority-1 incidents receive a first response within 2 "
         "hours on Pro (Enterprise customers get 30 minutes). So for a Pro customer: 99.9% uptime and a 2-hour first "
         "response on P1 incidents.",
         "Repeats the whole table, but correct and grounded.")],
      pair=True),
    S("Courier shows E-241. What's wrong?",
      "[doc-support-error-codes] Error E-214 means the lidar window is obstructed; clean the sensor window with a dry cloth. Error E-241 means the battery is over temperature; let the robot cool and check the dock fan.",
      "The battery is over temperature: let the robot cool down and check the dock fan.",
      [A("contradicts_context", 0, 0, "E-241 means the lidar window is dirty; clean it with a dry cloth.", "Confuses E-241 with E-214."),
       A(None, 1, 1, "Battery over temperature. Let it cool and check the dock fan.", "Matches the context for E-241."),
       A("unsupported_claim", 0, 1,
         "E-241 is a battery over-temperature alarm. Let the robot cool down and check the dock fan. This usually started "
         "happening after firmware 3.2 changed the charging curve.",
         "The diagnosis and fix are right, but the firmware 3.2 explanation is not in the context.")],
      pair=True),
    S("What is the list price of the NB-500?",
      "[doc-pricing-hardware-2025] The NB-100 Courier lists at £28,500 per unit, excluding VAT. The NB-300 Lifter lists at £74,000 per unit, excluding VAT.",
      "There is no NB-500 in the price list; the documents do not cover it.",
      [A("correct_refusal", 1, 1, REFUSAL, "The context has no NB-500, so declining is right."),
       A("unsupported_claim", 0, 0, "The NB-500 lists at £95,000 excluding VAT.", "Invented product price."),
       A("correct_refusal", 1, 1,
         "I can't find a price for an NB-500. The hardware price list I was given only covers two robots: the NB-100 "
         "Courier at £28,500 per unit and the NB-300 Lifter at £74,000 per unit, both excluding VAT. If the NB-500 is a new "
         "or planned product, its price isn't in these documents, so please check with Sales.",
         "A long refusal; the figures it quotes are in the context, and it rightly does not guess.")],
      pair=True),
    S("Can I work from Spain for six weeks?",
      "[doc-people-hybrid] Working from another country is limited to 20 working days per year and needs HR approval in advance.",
      "No. Six weeks (about 30 working days) exceeds the 20-working-day annual limit; any time abroad also needs HR approval in advance.",
      [A(None, 1, 1, "Not for six weeks: the limit is 20 working days a year, and HR has to approve it in advance.", "Applies the limit correctly."),
       A("contradicts_context", 0, 0, "Yes, as long as HR approves it.", "Ignores the 20-day cap, which six weeks exceeds."),
       A("contradicts_context", 0, 0,
         "Yes, you can. Northbeam supports flexible working, and working from another country is allowed as long as you get "
         "HR approval in advance. Six weeks is a fairly common length for this kind of arrangement, so send your request to "
         "HR early, agree your working hours with your manager, and make sure you have a reliable internet connection.",
         "Long, friendly and wrong: the 20-working-day limit rules out six weeks; 'fairly common' is unsupported too.")],
      pair=True),
    S("How many docks do we need for 10 Couriers?",
      "[doc-spec-nbdock] One NB-Dock can serve up to 4 NB-100 robots in rotation.",
      "3 docks (each serves up to 4 Couriers, so 10 need 3).",
      [A(None, 1, 1, "Three - each dock serves up to four Couriers.", "Correct arithmetic on a context figure."),
       A("wrong_number", 0, 0, "Two docks are enough.", "Two docks serve at most 8 robots; the arithmetic is wrong."),
       A("verbose_but_right", 1, 1,
         "Each NB-Dock can serve up to four NB-100 Couriers in rotation. With 10 Couriers, two docks would cover only eight "
         "robots, leaving two without a charging slot, so you need a third dock. Three docks give capacity for twelve, which "
         "also leaves a little headroom if you add robots later.",
         "Shows its working; all steps follow from the context.")],
      pair=True),
    S("I'm off sick for two weeks - what do I need to do?",
      "[doc-people-sickness] If you are unwell, tell your line manager before 10:00 and record the absence in PeopleHub. A fit note is required for absences longer than 7 calendar days.",
      "Tell your line manager before 10:00, record the absence in PeopleHub, and provide a fit note because it is longer than 7 days.",
      [A("incomplete", 1, 0, "Let your line manager know before 10:00.", "Misses PeopleHub and the fit note needed for two weeks."),
       A(None, 1, 1, "Tell your manager before 10:00, log it in PeopleHub, and get a fit note since it's over 7 days.", "Covers all three requirements."),
       A("unsupported_claim", 0, 0, "Email HR a doctor's note on day one; you'll only get statutory sick pay.",
         "Day-one note and statutory pay are not in the context, and the documented steps are missing.")],
      pair=True),
    S("I finished at 21:30 - can I claim a taxi home?",
      "[doc-expenses-2021] Taxis are reimbursed only for journeys starting after 22:00.",
      "Yes. Under the 2025 policy taxis are reimbursed after 21:00 (or when carrying equipment over 10 kg).",
      [A("wrong_number", 1, 0, "No, taxis are only reimbursed after 22:00.",
         "Faithful to the 2021 snippet, but the threshold is now 21:00, so the answer is wrong."),
       A("unsupported_claim", 0, 1, "Yes - under the current policy, taxis after 21:00 are reimbursable.",
         "Correct per the reference, but the context says 22:00, so the claim is not supported by it.")]),
    S("How do I reset my password?",
      "[doc-it-accounts] Passwords are reset at id.northbeam.example after completing an MFA prompt. Passwords must be at least 14 characters long.",
      "At id.northbeam.example, after completing an MFA prompt.",
      [A(None, 1, 1, "Go to id.northbeam.example and complete the MFA prompt.", "Short and matches the context."),
       A("unsupported_claim", 0, 0, "Call the IT desk on extension 4000 and they'll reset it for you.",
         "The context says self-service reset; the phone route is not supported."),
       A("verbose_but_right", 1, 1,
         "No problem, resetting your password is quick. Open a browser and go to id.northbeam.example. You'll be asked to "
         "complete an MFA prompt to prove it's you. Once that's done you can choose a new password. Remember that it needs "
         "to be at least 14 characters long, so a short passphrase of several words works well.",
         "Verbose; the steps and the 14-character rule are all in the context.")],
      pair=True),
    S("What's my annual training budget?",
      "[doc-people-benefits-2023] Each employee has a training budget of £750 per year.",
      "£1,000 per person per year (2025 benefits).",
      [A("wrong_number", 1, 0, "£750 a year.", "Faithful to the 2023 document, but the current budget is £1,000."),
       A("unsupported_claim", 0, 1, "£1,000 per year, approved by your manager.",
         "Correct per the reference, but neither £1,000 nor manager approval is in the retrieved context.")]),
    S("What is the price of Beacon Starter?",
      "[doc-pricing-2024] Beacon Starter costs £15 per robot per month.",
      "£19 per robot per month (2025 price list).",
      [A("wrong_number", 1, 0,
         "Beacon Starter costs £15 per robot per month. It's the entry tier of Beacon, so for a small fleet the monthly bill "
         "is simply £15 multiplied by the number of robots - for example, £150 a month for ten robots.",
         "Faithful to the 2024 price list, and the arithmetic is right, but the current price is £19."),
       A("unsupported_claim", 0, 0, "Beacon Starter is free for up to 3 robots.", "No free tier is mentioned anywhere; wrong as well.")]),
    S("How many robots does Beacon Starter support?",
      "[doc-pricing-2025] Beacon Starter costs £19 per robot per month and covers fleets of up to 10 robots.",
      "Up to 10 robots.",
      [A("wrong_number", 0, 0, "Up to 25 robots.", "The context says 10."),
       A(None, 1, 1, "Up to 10 robots.", "Exact."),
       A("contradicts_context", 0, 0,
         "Beacon Starter doesn't cap the number of robots; you simply pay £19 per robot per month, so it scales with your "
         "fleet. The tiers differ in features rather than fleet size, which is why many customers with large fleets still "
         "start on Starter before moving up.",
         "The price is right, but the context limits Starter to 10 robots, so the central claim contradicts it.")],
      pair=True),
    S("Is split tunnelling allowed on the VPN?",
      "[doc-it-vpn-runbook] Split tunnelling is disabled; all traffic goes through the VPN while connected.",
      "No. Split tunnelling is disabled, so all traffic goes through the VPN.",
      [A("contradicts_context", 0, 0, "Yes, split tunnelling is enabled for Microsoft 365 traffic.", "The context says it is disabled."),
       A("unsupported_claim", 0, 1, "No. It was switched off in 2023 after a security audit, so all traffic goes through the VPN.",
         "The answer is right, but the 2023 audit story is not in the context.")]),
    S("Is a £190-a-night hotel in London OK?",
      "[doc-travel-2024] Hotel stays in London are reimbursed up to £180 per night.",
      "Yes. The 2025 London cap is £200 per night.",
      [A("wrong_number", 1, 0, "No, it's over the £180 cap, so you'd need pre-approval.",
         "Follows the outdated 2024 cap; pre-approval is also not mentioned in this context, but the main error is the stale figure."),
       A("unsupported_claim", 0, 1, "Yes, the London cap is £200 a night.", "Right per the 2025 policy, unsupported by the 2024 snippet.")]),
    S("Can a Pro customer use the SAP connector?",
      "[doc-beacon-integrations] A certified SAP EWM connector is included in Beacon Enterprise; other WMS integrations use the REST API.",
      "No. The SAP EWM connector is Enterprise-only; a Pro customer would have to integrate through the REST API.",
      [A("contradicts_context", 0, 0, "Yes, the SAP EWM connector is available on all tiers.", "The context ties the connector to Enterprise."),
       A(None, 1, 1, "No, it's Enterprise-only; on Pro they'd integrate through the REST API.", "Correct and grounded."),
       A("verbose_but_right", 1, 1,
         "Not on the Pro tier. The certified SAP EWM connector is part of Beacon Enterprise. If the customer wants to stay on "
         "Pro, the alternative is to integrate using the REST API, which is how other warehouse management systems connect "
         "to Beacon. If the native connector matters to them, that's an argument for the upgrade to Enterprise.",
         "Long but every claim comes from the snippet.")],
      pair=True),
    S("We poll 15 robots every second with one API token. Will we get throttled?",
      "[doc-beacon-api] The Beacon API allows 600 requests per minute per token and returns 429 with a Retry-After header beyond that.",
      "Yes. 15 requests per second is 900 per minute, above the 600-per-minute limit, so expect 429 responses with Retry-After.",
      [A(None, 1, 1, "Yes. That's 900 requests a minute against a 600/min limit, so you'll see 429s with Retry-After.", "Correct arithmetic and consequence."),
       A("wrong_number", 0, 0, "No, 15 requests per second is well under the limit.", "15/s is 900/min, which exceeds 600/min."),
       A("verbose_but_right", 1, 1,
         "Yes, you will. The limit is 600 requests per minute per token. Polling 15 robots once a second means 15 requests "
         "every second, which is 900 requests a minute - 50% over the limit. Beyond the limit the API answers 429 and "
         "includes a Retry-After header, so your client should honour it. To stay under the limit you could poll less often "
         "or spread the load over more tokens if that's permitted.",
         "Thorough and correct; the closing suggestions are advice, not claims about the API.")],
      pair=True),
    S("Our dock ramp is 5 degrees. Will the NB-300 manage it?",
      "[doc-spec-nb300] The NB-300 Lifter is limited to ramps of 3 degrees.",
      "No. The NB-300 is limited to 3-degree ramps.",
      [A(None, 1, 1, "No - it's limited to 3 degrees.", "Correct and grounded."),
       A("contradicts_context", 0, 0,
         "Yes, a 5-degree ramp is fine for the NB-300. The Lifter has a powerful drive system designed for industrial sites, "
         "and ramps up to about 8 degrees are within its normal operating envelope, especially when it's not carrying a "
         "full pallet. Just make sure the ramp surface is clean and dry.",
         "Confident and detailed, but contradicts the 3-degree limit.")]),
    S("How many car parking spaces does the Rotterdam office have?",
      "[doc-facilities-rotterdam] The Rotterdam office is open 07:30-19:00, Monday to Friday. It has covered bike storage for 40 bikes in the basement.",
      "The documents do not say; they only mention storage for 40 bikes.",
      [A("correct_refusal", 1, 1, "I don't know based on the provided documents - they only mention storage for 40 bikes.",
         "Declines and points to what is there."),
       A("unsupported_claim", 0, 0, "There are 40 parking spaces.", "Turns bike storage into car parking; not supported.")],
      pair=True),
    S("How long do we keep support tickets?",
      "[doc-data-retention-2024] CCTV footage is kept for 30 days unless needed for an investigation. Support tickets are retained for 3 years after closure.",
      "3 years after closure.",
      [A("wrong_refusal", 1, 0, "Sorry, the documents don't say how long tickets are kept.", "The second sentence answers the question."),
       A(None, 1, 1, "Three years after they're closed.", "Correct."),
       A("wrong_number", 0, 0, "30 days.", "That is the CCTV retention period, not tickets.")],
      pair=True),
    S("What time should my new hire go to IT on day one?",
      "[doc-people-onboarding] New starters collect their laptop from IT at 09:30 on their first day.",
      "09:30.",
      [A("wrong_refusal", 1, 0,
         "I'm sorry, but I couldn't find specific guidance on what time new starters should visit IT. Onboarding schedules "
         "can vary between teams and offices, so the best approach is to check with your HR business partner or the IT "
         "service desk, who will be able to confirm the arrangements for your new hire's first day.",
         "A long, polite refusal although the context gives 09:30; it makes no claim the context contradicts."),
       A(None, 1, 1, "09:30 - that's when they collect their laptop from IT.", "Correct.")]),
    S("Can the NB-100 run in our -20°C freezer?",
      "[doc-spec-nb100] The NB-100 Courier operates between -5°C and 40°C.",
      "No. The NB-100 is rated down to -5°C; the NB-100C cold-store variant is the option for freezers.",
      [A(None, 1, 1, "No. Its operating range only goes down to -5°C.", "The key fact (no, -5°C floor) matches the reference."),
       A("unsupported_claim", 0, 0,
         "Yes. With the optional heater kit installed, the NB-100 runs reliably down to -30°C, and many customers use it in "
         "frozen-food distribution centres. Battery life drops by roughly a fifth in the cold, so plan charging accordingly.",
         "The heater kit, -30°C rating and battery claim are all invented; the answer is wrong."),
       A("unsupported_claim", 0, 1, "No; you'd need the NB-100C cold-store variant, which works down to -25°C.",
         "Agrees with the reference, but the NB-100C is not mentioned in the context.")],
      pair=True),
    S("Do I need a receipt for an £18 lunch?",
      "[doc-expenses-2025] Itemised receipts are mandatory for any single expense over £25.",
      "No. Receipts are only mandatory for expenses over £25.",
      [A(None, 1, 1, "No - only expenses over £25 need an itemised receipt.", "Applies the threshold correctly."),
       A("contradicts_context", 0, 0, "Yes, every expense needs a receipt.", "The context limits the requirement to expenses over £25."),
       A("verbose_but_right", 1, 1,
         "You don't strictly need one. The expenses policy makes itemised receipts mandatory only for single expenses over "
         "£25. An £18 lunch is below that threshold, so the claim can go through without a receipt, although keeping one "
         "never hurts if you have it.",
         "Longer than needed, still correct and grounded.")],
      pair=True),
    S("How long is maternity leave on full pay?",
      "[doc-people-leave-2025] Maternity leave is paid in full for 26 weeks, followed by statutory pay.",
      "26 weeks at full pay, then statutory pay.",
      [A(None, 1, 1, "26 weeks at full pay, then statutory pay.", "Exact."),
       A("wrong_number", 0, 0, "16 weeks at full pay.", "The context says 26 weeks."),
       A("verbose_but_right", 1, 1,
         "Northbeam's maternity leave is generous: the first 26 weeks are paid in full. After those 26 weeks, pay continues "
         "at the statutory rate for the rest of the leave period. If you're planning leave, it's worth talking to People "
         "early so the dates are set up properly.",
         "Verbose; the figures match, and the final sentence is advice rather than a factual claim.")],
      pair=True),
    S("A customer is ordering 60 robots. What discount can we give, and who approves it?",
      "[doc-pricing-discounts] Orders of 10 or more robots get an 8% discount; orders of 50 or more get 15%, which needs VP Sales sign-off.",
      "15%, with VP Sales sign-off.",
      [A("incomplete", 1, 0, "15%.", "The approver, which was asked for, is missing."),
       A(None, 1, 1, "15%, but VP Sales has to sign it off.", "Both parts right."),
       A("wrong_number", 0, 0, "8%, and no approval is needed.", "60 robots falls in the 15% band, which needs sign-off.")],
      pair=True),
    S("Does Beacon support Oracle WMS?",
      "[doc-beacon-tiers] Heat maps and single sign-on are included from Beacon Pro upwards, not in Starter.",
      "The provided documents do not say.",
      [A("correct_refusal", 1, 1, REFUSAL, "The context is about tier features and says nothing about Oracle."),
       A("unsupported_claim", 0, 0, "Yes, through the certified Oracle connector on Enterprise.", "Invented connector.")]),
    S("Leeds to Austin is about 11 hours via Heathrow. Can I book business class?",
      "[doc-travel-2025] Flights longer than 6 hours may be booked in business class; shorter flights are economy.",
      "Yes. Flights longer than 6 hours may be booked in business class.",
      [A(None, 1, 1, "Yes - flights over 6 hours can be business class.", "Correct."),
       A("verbose_but_right", 1, 1,
         "Yes, you can. The travel policy allows business class for flights longer than 6 hours, and anything shorter has to "
         "be economy. Your Leeds to Austin trip is around 11 hours, which is well over the threshold, so business class is "
         "within policy.",
         "Longer but correct, using the question's 11 hours and the context's rule."),
       A("contradicts_context", 0, 0, "No, economy only.", "An 11-hour flight qualifies for business class under the context.")]),
]


def build(rng: random.Random) -> list[dict]:
    records = []
    pair_no = 0
    for sc in SCENARIOS:
        pair_id = None
        if sc["pair"]:
            pair_no += 1
            pair_id = f"pair-{pair_no:02d}"
        for k, ans in enumerate(sc["answers"]):
            records.append({
                "question": sc["question"],
                "context": sc["context"],
                "answer": ans["answer"],
                "reference_answer": sc["reference"],
                "labels": {"faithfulness": ans["faithfulness"], "correctness": ans["correctness"]},
                "rationale": ans["rationale"],
                "failure_mode": ans["failure_mode"],
                "pair_id": pair_id if k < 2 else None,
            })
    rng.shuffle(records)
    return [{"id": f"jdg-{i:03d}", **r} for i, r in enumerate(records, start=1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: beside this script)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = build(random.Random(SEED))
    with open(args.out / "judgments.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} judgments to {args.out}")


if __name__ == "__main__":
    main()
