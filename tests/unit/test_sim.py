"""The simulation (`make sim`) that the team decides routing and nurture changes by: the same seed gives the
same report, the measures count what docs/simulation.md says they count, and the drip arm really is a
fixed-order drip."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory import InMemoryProspects
from chalicelib.adapters.templates import TemplateRenderer, load_shipped_templates
from chalicelib.wiring import load_default_rules
from sim import diagnose, measure
from sim.__main__ import run_seed
from sim.drive import ArmLog, Route, Send, Simulation, drip_order
from sim.population import BASE, VARIANT, Person, make_population
from sim.site import site_map
from sim.store import LiveProspects

RULES = load_default_rules()
TEMPLATES = load_shipped_templates()


def person(pid: int, window: tuple[float, float] | None, interests: tuple[str, ...] = ("pricing",)) -> Person:
    return Person(
        pid=pid,
        segment="icp_buyer",
        email=f"p{pid}@example.com",
        anonymous_id=f"anon-{pid}",
        traits={},
        interests=interests,
        arrival_day=0,
        identify_day=0,
        window=window,
        hand_raise_day=None,
        open_rate=0.2,
        machine_opens=False,
        visit_rate=0.05,
    )


def simulate(
    arm: str, *, seed: int = 7, size: int = 40, days: int = 20, store: Any = LiveProspects
) -> ArmLog:
    site = site_map(RULES)
    people = make_population(seed, size, site.topics, days)
    return Simulation(
        seed=seed,
        people=people,
        site=site,
        rules=RULES,
        templates=TEMPLATES,
        renderer=TemplateRenderer(),
        days=days,
        arm=arm,
        store=store,
    ).run()


def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    first, again, other = run_seed(3, 40, 20), run_seed(3, 40, 20), run_seed(4, 40, 20)
    for run in (first, again, other):
        run.pop("seconds")

    assert first == again
    assert first["population"] != other["population"]
    assert first["nurture"]["tailored"]["sends"] > 0  # the run did something worth comparing


def test_the_fast_store_decides_exactly_as_the_stored_document_store() -> None:
    fast = simulate("tailored", store=LiveProspects)
    stored = simulate("tailored", store=InMemoryProspects)

    assert fast.sends and [(s.pid, s.template, s.day, s.clicked) for s in fast.sends] == [
        (s.pid, s.template, s.day, s.clicked) for s in stored.sends
    ]
    assert fast.routes == stored.routes


def test_routing_measures_on_a_hand_built_case() -> None:
    people = [
        person(0, (10, 20)),  # routed on day 12 (2 days into the window) and again too early on day 5
        person(1, (30, 40)),  # routed after the window: wrong, and never while ready
        person(2, None),  # never ready, routed: wrong
        person(3, (50, 60)),  # ready, never routed
        person(4, (88, 95)),  # opens too close to the horizon (90 days) to count as a ready buyer
    ]
    routes = [
        Route(0, 5.0, "qualified"),
        Route(0, 12.0, "qualified"),
        Route(1, 41.0, "x"),
        Route(2, 3.0, "x"),
    ]

    got = measure.routing(people, routes, days=90)

    assert got["routes"] == 4
    assert got["precision"] == pytest.approx(1 / 4)
    assert got["ready_buyers"] == 3
    assert got["recall"] == pytest.approx(1 / 3)
    assert got["median_days_to_route"] == pytest.approx(2.0)


def test_nurture_measures_on_a_hand_built_case() -> None:
    sends = [
        Send(0, "pricing-roi", 1.0, relevant=True, repeat=False, clicked=True, opened=True),
        Send(0, "pricing-roi", 50.0, relevant=True, repeat=True),
        Send(1, "welcome-product-tour", 1.0, relevant=False, repeat=False, opened=True),
        Send(2, "case-study-retail", 2.0, relevant=False, repeat=False),
    ]

    got = measure.nurture(sends)

    assert got["sends"] == 4
    assert got["click_rate"] == pytest.approx(0.25)
    assert got["open_rate"] == pytest.approx(0.5)
    assert got["topic_match"] == pytest.approx(0.5)
    assert got["repeats"] == 1
    assert measure.spread([0.1, None, 0.3]) == {"mean": pytest.approx(0.2), "min": 0.1, "max": 0.3}


def test_the_drip_arm_sends_every_prospect_the_templates_in_one_fixed_order() -> None:
    order = drip_order([t.meta for t in TEMPLATES.values()])
    log = simulate("drip", days=25)

    by_person: dict[int, list[str]] = {}
    for send in sorted(log.sends, key=lambda s: s.day):
        by_person.setdefault(send.pid, []).append(send.template)
    assert by_person and any(len(sent) >= 3 for sent in by_person.values())
    for sent in by_person.values():
        assert sent == [order[n % len(order)] for n in range(len(sent))]
    assert order[0] == "welcome-product-tour"  # awareness first, as a marketer's drip starts


def test_the_diagnosis_says_which_path_and_when_each_wrong_route_came() -> None:
    people = [person(0, (30, 50)), person(1, None), person(2, (10, 20))]
    routes = [
        Route(0, 12.0, "qualified: fit 55 ≥ 40, engagement 40 ≥ 35"),  # 18 days early
        Route(0, 31.0, "re-qualified after recycle (not_ready, 19 days ago): new engagement 36 ≥ 35"),
        Route(1, 5.0, "low-fit hand-raise: Demo Requested (fit 10 < 40: free mailbox)"),
        Route(2, 25.0, "surge after recycle (not_ready, 3 days ago): 41 new points this week ≥ 40"),
        Route(2, 15.0, "hand-raise: Demo Requested"),
    ]

    got = diagnose.wrong_routes(people, routes)

    assert got["path"] == {"qualified": 1, "low_fit_hand_raise": 1, "recycle_surge": 1}
    assert got["timing"] == {"8-21 days early": 1, "no window": 1, "after window": 1}
    assert diagnose.right_routes_by_path(people, routes) == {"requalified": 1, "hand_raise": 1}
    merged = diagnose.merge([{"wrong_routes": got}, {"wrong_routes": got}])
    assert merged["wrong_routes"]["path"]["qualified"] == 2


def test_a_missed_buyer_routed_before_the_window_is_told_apart_from_one_who_never_fit() -> None:
    held, unknown = person(0, (30, 50)), person(1, (30, 50))
    routes = [Route(0, 20.0, "qualified: fit 55 ≥ 40")]

    assert diagnose.miss_cause(held, routes, [], RULES) == "routed before the window, held by the recycle"
    assert diagnose.miss_cause(unknown, [], [], RULES) == "never identified"


def test_the_variant_population_differs_in_its_assumptions() -> None:
    site = site_map(RULES)
    base = make_population(1, 400, site.topics, 90)
    variant = make_population(1, 400, site.topics, 90, VARIANT)

    def share(people: list[Person], segment: str) -> float:
        return sum(p.segment == segment for p in people) / len(people)

    def titled(people: list[Person]) -> float:
        return sum("title" in p.traits for p in people) / len(people)

    assert share(variant, "competitor") > share(base, "competitor")
    assert titled(variant) < titled(base)
    lengths = [p.window[1] - p.window[0] for p in variant if p.window is not None]
    assert lengths and max(lengths) <= VARIANT.window_days[1] < BASE.window_days[1]
    assert all(p.assumptions is VARIANT for p in variant)
