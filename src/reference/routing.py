"""Model routing: send each request to the cheapest model that does it well.

Two routers and their combination:

* :class:`RuleRouter`: readable rules (regular expressions and a length limit) that
  decide the obvious cases and abstain on the rest.
* :class:`ClassifierRouter`: logistic regression (scikit-learn) on sentence
  embeddings, trained on labelled requests; its ``threshold`` on P(expensive) trades
  quality for cost.
* :class:`HybridRouter`: rules first, the classifier for whatever the rules leave.

:func:`evaluate_routes` scores any routing against labels, with costs from the price
table (:mod:`reference.cost`) for two named models, so a router can be compared with
the always-cheap and always-expensive baselines.

Example:
    >>> RuleRouter().route("hi there!")
    'cheap'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from reference.cost import ModelPrice, count_tokens, get_price
from reference.errors import ConfigurationError, InputError

Route = Literal["cheap", "expensive"]
ROUTES: tuple[str, str] = ("cheap", "expensive")

#: Default rules: (pattern, route). The first pattern that matches decides.
DEFAULT_RULES: tuple[tuple[str, Route], ...] = (
    # small talk and thanks: never worth a large model
    (r"^\s*(hi|hello|hey|thanks|thank you|cheers|good (morning|afternoon|evening))\b(\W+\w+){0,3}\W*$", "cheap"),
    # code: write / refactor / debug, or code pasted into the message
    (r"```|\bdef \w+\(|\bSELECT\b.+\bFROM\b|\b(write|refactor|debug|implement)\b.{0,40}\b(code|function|script|"
     r"query|class|endpoint|test|regex)", "expensive"),
    # arithmetic, comparisons and recommendations over several inputs
    (r"\b(compare|estimate|calculate|business case|break-?even|tco|total cost|lease or buy|"
     r"recommend|trade-?offs?|pros and cons|show your reasoning)\b", "expensive"),
    # drafting long or tone-sensitive text
    (r"\b(draft|write)\b.{0,30}\b(letter|email|e-mail|reply|response|announcement|apology)\b", "expensive"),
)


class RuleRouter:
    """Route by rules; returns ``None`` when no rule applies (abstain).

    Args:
        rules: ``(regex, route)`` pairs tried in order (case-insensitive).
        long_words: a request longer than this many words goes to the expensive model
            (long requests usually combine several asks); ``None`` switches it off.

    Example:
        >>> RuleRouter().route("Where is my order NB-ORD-41234?") is None
        True
    """

    def __init__(self, rules: Sequence[tuple[str, Route]] = DEFAULT_RULES, *, long_words: int | None = 45) -> None:
        compiled = []
        for pattern, route in rules:
            if route not in ROUTES:
                raise ConfigurationError(f"rule route must be 'cheap' or 'expensive', got {route!r}")
            try:
                compiled.append((re.compile(pattern, re.IGNORECASE), route))
            except re.error as exc:
                raise ConfigurationError(f"bad rule pattern {pattern!r}: {exc}") from None
        self.rules = compiled
        self.long_words = long_words

    def route(self, text: str) -> Route | None:
        """The route the first matching rule gives, or ``None``."""
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}")
        for pattern, route in self.rules:
            if pattern.search(text):
                return route
        if self.long_words is not None and len(text.split()) > self.long_words:
            return "expensive"
        return None

    def route_many(self, texts: Sequence[str], default: Route | None = None) -> list[Route | None]:
        """Route each text; abstentions become ``default``."""
        return [self.route(t) or default for t in texts]


class ClassifierRouter:
    """Logistic regression on embeddings: P(the request needs the expensive model).

    Args:
        embedder: a :class:`reference.embeddings.Embedder`.
        threshold: route to ``expensive`` when P(expensive) >= threshold. Lower it to
            protect quality (more expensive calls), raise it to save money.
        C: inverse regularisation strength of the logistic regression.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> r = ClassifierRouter(FakeEmbedder()).fit(["hi", "compare the TCO"] * 3, ["cheap", "expensive"] * 3)
        >>> r.route("compare the TCO")
        'expensive'
    """

    def __init__(self, embedder: Any, *, threshold: float = 0.5, C: float = 4.0) -> None:  # noqa: N803
        if not 0.0 <= threshold <= 1.0:
            raise ConfigurationError(f"threshold must be in [0, 1], got {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.C = C
        self._model: Any = None

    def features(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        """Embedding plus the log of the length in words (long requests tend to be hard)."""
        vecs = self.embedder.embed(list(texts)) if vectors is None else np.asarray(vectors, dtype=np.float32)
        lengths = np.log1p([len(t.split()) for t in texts]).astype(np.float32)[:, None]
        return np.hstack([vecs, lengths])

    def fit(self, texts: Sequence[str], routes: Sequence[str], *, vectors: np.ndarray | None = None
            ) -> ClassifierRouter:
        """Train on labelled requests (``routes`` are ``"cheap"``/``"expensive"``)."""
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

        if len(texts) != len(routes):
            raise InputError(f"{len(texts)} texts but {len(routes)} labels")
        bad = sorted({r for r in routes} - set(ROUTES))
        if bad:
            raise InputError(f"labels must be 'cheap' or 'expensive', got {bad}")
        y = np.array([r == "expensive" for r in routes], dtype=int)
        if len(set(y.tolist())) < 2:
            raise InputError("training data needs both cheap and expensive examples")
        self._model = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced", random_state=0)
        self._model.fit(self.features(texts, vectors), y)
        return self

    def p_expensive(self, texts: Sequence[str], *, vectors: np.ndarray | None = None) -> np.ndarray:
        """P(expensive) for each text."""
        if self._model is None:
            raise ConfigurationError("the classifier is not trained: call fit() first")
        return self._model.predict_proba(self.features(texts, vectors))[:, 1]

    def route_many(self, texts: Sequence[str], *, vectors: np.ndarray | None = None,
                   threshold: float | None = None) -> list[Route]:
        t = self.threshold if threshold is None else threshold
        return ["expensive" if p >= t else "cheap" for p in self.p_expensive(texts, vectors=vectors)]

    def route(self, text: str) -> Route:
        return self.route_many([text])[0]


class HybridRouter:
    """Rules decide what they can; the classifier decides the rest.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> clf = ClassifierRouter(FakeEmbedder()).fit(["hi", "compare the TCO"] * 3, ["cheap", "expensive"] * 3)
        >>> HybridRouter(RuleRouter(), clf).route("hello!")
        'cheap'
    """

    def __init__(self, rules: RuleRouter, classifier: ClassifierRouter) -> None:
        self.rules = rules
        self.classifier = classifier

    def route_many(self, texts: Sequence[str], *, vectors: np.ndarray | None = None,
                   threshold: float | None = None) -> list[Route]:
        by_rule = [self.rules.route(t) for t in texts]
        by_model = self.classifier.route_many(texts, vectors=vectors, threshold=threshold)
        return [r if r is not None else m for r, m in zip(by_rule, by_model, strict=True)]

    def route(self, text: str) -> Route:
        return self.route_many([text])[0]


@dataclass(frozen=True)
class RouteCosts:
    """Per-request cost of each route from the price table.

    Attributes:
        cheap, expensive: prices of the two named models.
        overhead_tokens: prompt tokens around the request (system prompt, context).
        completion_tokens: expected answer length in tokens (same for both models).
    """

    cheap: ModelPrice
    expensive: ModelPrice
    overhead_tokens: int = 400
    completion_tokens: int = 250

    @classmethod
    def named(cls, cheap: str = "gpt-4o-mini", expensive: str = "gpt-4o", **kwargs: Any) -> RouteCosts:
        """Costs for two models by name, e.g. ``RouteCosts.named("gpt-4o-mini", "gpt-4o")``."""
        return cls(get_price(cheap), get_price(expensive), **kwargs)

    def cost(self, text: str, route: str) -> float:
        """Dollars for one request sent down ``route``."""
        price = self.cheap if route == "cheap" else self.expensive
        prompt = self.overhead_tokens + count_tokens(text, price.model if price.provider == "openai" else "gpt-4o")
        return price.cost(prompt, self.completion_tokens)


def evaluate_routes(texts: Sequence[str], predicted: Sequence[str | None], needed: Sequence[str],
                    costs: RouteCosts) -> dict[str, float]:
    """Quality and cost of a routing against the labelled need.

    Metrics:
        * ``route_accuracy``: share of requests whose route equals the labelled route.
        * ``quality``: share served by a model able to do them: a hard request needs the
          expensive model; an easy one is fine on either (over-routing wastes money,
          not quality).
        * ``under_routed``: hard requests sent to the cheap model (the quality failures).
        * ``over_routed``: easy requests sent to the expensive model (wasted money).
        * ``cost_usd`` and ``cost_per_1k_usd``: from ``costs`` (abstentions count as expensive).

    Example:
        >>> c = RouteCosts.named()
        >>> evaluate_routes(["hi"], ["cheap"], ["cheap"], c)["quality"]
        1.0
    """
    if not (len(texts) == len(predicted) == len(needed)):
        raise InputError("texts, predicted and needed must have the same length")
    if not texts:
        raise InputError("nothing to evaluate")
    routes = [p if p in ROUTES else "expensive" for p in predicted]
    match = sum(p == n for p, n in zip(routes, needed, strict=True))
    under = sum(p == "cheap" and n == "expensive" for p, n in zip(routes, needed, strict=True))
    over = sum(p == "expensive" and n == "cheap" for p, n in zip(routes, needed, strict=True))
    total = sum(costs.cost(t, r) for t, r in zip(texts, routes, strict=True))
    n = len(texts)
    return {
        "n": float(n),
        "route_accuracy": match / n,
        "quality": 1.0 - under / n,
        "under_routed": float(under),
        "over_routed": float(over),
        "expensive_share": sum(r == "expensive" for r in routes) / n,
        "cost_usd": total,
        "cost_per_1k_usd": 1000 * total / n,
    }
