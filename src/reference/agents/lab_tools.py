"""Tools over the lab's own data, for agents: search, SQL, arithmetic, prices, tickets, e-mail.

:class:`LabEnvironment` holds the state the tools act on and builds the
:class:`~reference.agents.tools.Toolbox`:

=====================  ===========  ==========================================================
tool                   kind         what it does
=====================  ===========  ==========================================================
search_documents       read-only    BM25 search over the Northbeam corpus (chunked pages)
query_llm_log          read-only    one ``SELECT`` on the LLM-call log (:mod:`reference.sqllab`)
calculate              read-only    safe arithmetic (an AST walk, no ``eval``)
lookup_price           read-only    Northbeam list prices (UK 2024/2025 GBP, US 2025 USD)
model_price            read-only    a model's token price (:func:`reference.cost.get_price`)
create_support_ticket  side effect  files a ticket in a SQLite desk; idempotent by key
send_email             side effect  puts a message in an outbox; recipient must come from the user
=====================  ===========  ==========================================================

The ticket desk holds an API token, a stand-in for the credentials real tools carry;
it is registered as a secret, so the executor removes it from anything the model or
the trace would see.

Example:
    >>> env = LabEnvironment.create(search_doc_ids=["sup-nb-error-codes"])
    >>> env.toolbox().get("calculate").invoke({"expression": "17 * 23"})
    391
"""

from __future__ import annotations

import ast
import csv
import io
import operator
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from reference.agents.tools import Toolbox, ToolError, tool
from reference.errors import InputError

__all__ = [
    "CorpusSearch", "TicketDesk", "Outbox", "LabEnvironment", "safe_calculate", "load_price_lists",
    "TICKET_INTENT", "EMAIL_INTENT", "HELPDESK_TOKEN",
]

#: A fake credential the ticket desk "uses"; it must never reach a model or a trace.
HELPDESK_TOKEN = "hdk_live_7Qm2VxP9sL4tR8wZ"
#: What a user's request must say before a ticket may be filed (matched on the user's words only).
TICKET_INTENT = (r"\b(open|create|file|raise|log|submit|make)\b[^.?!]{0,60}\btickets?\b",
                 r"\btickets?\b[^.?!]{0,20}\b(please|for me)\b")
#: What a user's request must say before an e-mail may be sent.
EMAIL_INTENT = (r"\b(send|e-?mail|forward)\b[^.?!]{0,80}\b(to|at)\b",)


# --------------------------------------------------------------------------- search


class CorpusSearch:
    """BM25 over chunked pages of corpus documents (fast, offline, no embeddings needed).

    Built on :class:`reference.retrieval.BM25Index` and :func:`reference.chunking.recursive_chunks`
    with word-count chunks of about ``chunk_words`` words.

    Args:
        doc_ids: documents to index (``None``: the whole manifest).
        chunk_words: target chunk size in words.
        snippet_chars: longest text returned per hit.
    """

    def __init__(self, doc_ids: Sequence[str] | None = None, *, chunk_words: int = 90,
                 snippet_chars: int = 350) -> None:
        self.doc_ids, self.chunks, self.titles = _load_chunks(tuple(doc_ids) if doc_ids else None, chunk_words)
        from reference.retrieval import BM25Index  # noqa: PLC0415

        self.index = BM25Index()
        self.index.index(self.chunks)
        self.snippet_chars = snippet_chars

    def search(self, query: str, k: int = 3) -> list[dict[str, str]]:
        """Top ``k`` chunks as ``{"doc_id", "title", "text"}`` (may be fewer, never an error for no hits)."""
        hits = self.index.search(query, k=k)
        return [{"doc_id": h.chunk.doc_id, "title": self.titles.get(h.chunk.doc_id, ""),
                 "text": _window(" ".join(h.chunk.text.split()), query, self.snippet_chars)} for h in hits]

    def __len__(self) -> int:
        return len(self.chunks)


def _window(text: str, query: str, size: int) -> str:
    """``size`` characters of ``text`` starting a little before the first query term found."""
    if len(text) <= size:
        return text
    lowered = text.lower()
    positions = [lowered.find(w) for w in re.findall(r"[a-z0-9][a-z0-9-]{2,}", query.lower())]
    found = [p for p in positions if p >= 0]
    start = max(0, min(found) - size // 4) if found else 0
    start = min(start, len(text) - size)
    return ("..." if start else "") + text[start:start + size]


@lru_cache(maxsize=8)
def _load_chunks(doc_ids: tuple[str, ...] | None,
                 chunk_words: int) -> tuple[tuple[str, ...], list[Any], dict[str, str]]:
    from reference.chunking import WordCounter, recursive_chunks  # noqa: PLC0415
    from reference.datasets import document_text, load_manifest  # noqa: PLC0415
    from reference.ingest import Page  # noqa: PLC0415

    records = load_manifest()
    if doc_ids is not None:
        known = {r.doc_id for r in records}
        unknown = sorted(set(doc_ids) - known)
        if unknown:
            raise InputError(f"unknown doc_id(s) {unknown}")
        records = [r for r in records if r.doc_id in set(doc_ids)]
    pages = []
    for r in records:
        for n, text in enumerate(document_text(r), start=1):
            if text.strip():
                pages.append(Page(text, {"doc_id": r.doc_id, "page": n, "title": r.title}))
    chunks = recursive_chunks(pages, size=chunk_words, overlap=max(0, chunk_words // 6), counter=WordCounter())
    return tuple(r.doc_id for r in records), chunks, {r.doc_id: r.title for r in records}


# --------------------------------------------------------------------------- arithmetic

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNOPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {"round": round, "min": min, "max": max, "abs": abs}


def safe_calculate(expression: str) -> int | float:
    """Evaluate arithmetic without ``eval``: numbers, ``+ - * / // % **``, brackets, round/min/max/abs.

    Raises:
        ToolError: anything else (names, attributes, huge powers, division by zero).

    Example:
        >>> safe_calculate("3 * 29900 + 9500")
        99200
    """
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expression.replace("×", "*").replace("^", "**"))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot parse {expression!r} as arithmetic; use numbers and + - * / ( )") from None

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ToolError("power too large")
            try:
                return _BINOPS[type(node.op)](left, right)
            except ZeroDivisionError:
                raise ToolError("division by zero") from None
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            return _UNOPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and not node.keywords:
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ToolError(f"{expression!r} contains something that is not arithmetic ({type(node).__name__})")

    value = ev(tree)
    if isinstance(value, float):
        if value != value or abs(value) > 1e15:
            raise ToolError("result out of range")
        return int(value) if value.is_integer() else round(value, 6)
    return value


# --------------------------------------------------------------------------- prices


@lru_cache(maxsize=1)
def load_price_lists() -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Northbeam list prices from the corpus: ``{(region, year): [row, ...]}``.

    Rows have ``sku``, ``product``, ``unit``, ``price``, ``currency``, ``valid_from`` (if
    given) and ``source`` (the doc_id).
    """
    from reference.datasets import document_text, load_manifest  # noqa: PLC0415

    sources = {("UK", 2024): "prd-pricelist-gbp-2024", ("UK", 2025): "prd-pricelist-gbp-2025",
               ("US", 2025): "prd-pricelist-usd-2025"}
    records = {r.doc_id: r for r in load_manifest()}
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for key, doc_id in sources.items():
        text = document_text(records[doc_id])[0]
        rows: list[dict[str, Any]] = []
        header: list[str] | None = None
        for line in text.splitlines():
            if line.startswith("Sheet:") or not line.strip():
                header = None
                continue
            cells = [c.strip() for c in (line.split(" | ") if " | " in line else next(csv.reader(io.StringIO(line))))]
            if header is None:
                header = cells
                continue
            row = dict(zip(header, cells, strict=False))
            price_col = next(c for c in header if c.startswith("list_price_"))
            name = row.get("product") or row.get("tier") or row.get("service") or ""
            if row.get("tier"):
                name = f"Beacon {name}"
            rows.append({"sku": row["sku"], "product": name, "unit": row.get("unit", ""),
                         "price": float(row[price_col]) if "." in row[price_col] else int(row[price_col]),
                         "currency": price_col.rsplit("_", 1)[1].upper(), "valid_from": row.get("valid_from", ""),
                         "source": doc_id})
        out[key] = rows
    return out


def _match_products(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    q = query.strip().lower()
    exact = [r for r in rows if r["sku"].lower() == q]
    if exact:
        return exact
    words = [w for w in re.split(r"[^a-z0-9-]+", q) if w and w not in {"the", "a", "price", "of", "list"}]
    contains = [r for r in rows if q in r["product"].lower() or q in r["sku"].lower()]
    if contains:
        return contains
    return [r for r in rows if words and all(w in (r["product"] + " " + r["sku"]).lower() for w in words)]


# --------------------------------------------------------------------------- side effects


class TicketDesk:
    """A support-ticket store in SQLite; creating is idempotent on ``idempotency_key``.

    Example:
        >>> desk = TicketDesk()
        >>> a = desk.create("Acme", "Robot stops", "P2", idempotency_key="k1")
        >>> b = desk.create("Acme", "Robot stops", "P2", idempotency_key="k1")
        >>> (a["ticket_id"] == b["ticket_id"], b["duplicate"], desk.count())
        (True, True, 1)
    """

    def __init__(self, path: str = ":memory:", *, api_token: str = HELPDESK_TOKEN) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        self.api_token = api_token
        with self._lock, self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL, "
                "subject TEXT NOT NULL, priority TEXT NOT NULL, idempotency_key TEXT UNIQUE)")

    def create(self, customer: str, subject: str, priority: str = "P3", *,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """File a ticket, or return the one already filed under ``idempotency_key``."""
        with self._lock, self._conn:
            if idempotency_key:
                row = self._conn.execute("SELECT id FROM tickets WHERE idempotency_key = ?",
                                         (idempotency_key,)).fetchone()
                if row:
                    return {"ticket_id": f"NB-T{row[0]:05d}", "status": "open", "duplicate": True}
            cur = self._conn.execute(
                "INSERT INTO tickets (customer, subject, priority, idempotency_key) VALUES (?, ?, ?, ?)",
                (customer, subject, priority, idempotency_key))
            return {"ticket_id": f"NB-T{cur.lastrowid:05d}", "status": "open", "duplicate": False}

    def tickets(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, customer, subject, priority, idempotency_key FROM tickets").fetchall()
        return [{"ticket_id": f"NB-T{r[0]:05d}", "customer": r[1], "subject": r[2], "priority": r[3],
                 "idempotency_key": r[4]} for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])


@dataclass
class Outbox:
    """Where ``send_email`` puts messages (nothing leaves the machine); idempotent by key."""

    sent: list[dict[str, str]] = field(default_factory=list)

    def send(self, to: str, subject: str, body: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        for i, m in enumerate(self.sent):
            if idempotency_key and m.get("idempotency_key") == idempotency_key:
                return {"message_id": f"msg-{i + 1}", "duplicate": True}
        self.sent.append({"to": to, "subject": subject, "body": body, "idempotency_key": idempotency_key or ""})
        return {"message_id": f"msg-{len(self.sent)}", "duplicate": False}


#: The e-mail shape, as a schema ``pattern`` so that grammar-constrained decoding enforces it too.
# (``[.]`` rather than ``\.``: llama.cpp's grammar parser rejects the escape the converter would emit.)
EMAIL_PATTERN = r"^[A-Za-z0-9._+-]{1,40}@[A-Za-z0-9-]{1,30}([.][A-Za-z0-9-]{1,30}){0,3}[.][A-Za-z]{2,10}$"


def _email(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", value):
        raise ValueError("not an e-mail address")
    return value


def _read_only_connection() -> sqlite3.Connection:
    from reference.sqllab import connect, create_clean_view  # noqa: PLC0415

    source = connect()
    create_clean_view(source)
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    source.backup(conn)
    source.close()
    conn.execute("PRAGMA query_only = ON")
    return conn


LOG_TABLES = ("calls(request_id, ts, user_id, model, prompt_tokens, completion_tokens, latency_ms, status, "
              "cost_usd, ingested_at); calls_clean (calls without duplicate rows); "
              "users(user_id, user_name, team_id); teams(team_id, team_name); "
              "models(model, provider, usd_per_1m_prompt, usd_per_1m_completion)")


# --------------------------------------------------------------------------- environment


@dataclass
class LabEnvironment:
    """The world the lab's tools act on; :meth:`toolbox` binds the tools to it.

    Attributes:
        search: the corpus index.
        db: read-only connection to the LLM-call log.
        desk: the ticket desk (side effects).
        outbox: sent e-mails (side effects).
    """

    search: CorpusSearch
    db: sqlite3.Connection
    desk: TicketDesk
    outbox: Outbox
    max_rows: int = 20
    _db_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def create(cls, *, search_doc_ids: Sequence[str] | None = None, ticket_db: str = ":memory:") -> LabEnvironment:
        """A fresh environment (empty desk and outbox); the search index is cached per process."""
        return cls(CorpusSearch(search_doc_ids), _read_only_connection(), TicketDesk(ticket_db), Outbox())

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a model or a trace."""
        return (self.desk.api_token,)

    def state(self) -> dict[str, int]:
        """Counts of side effects so far: ``{"tickets": n, "emails": m}``."""
        return {"tickets": self.desk.count(), "emails": len(self.outbox.sent)}

    def run_sql(self, sql: str) -> dict[str, Any]:
        """One read-only ``SELECT``; at most ``max_rows`` rows come back."""
        statement = sql.strip().rstrip(";").strip()
        if ";" in statement:
            raise ToolError("one statement only")
        if not re.match(r"(?is)^(select|with)\b", statement):
            raise ToolError("only SELECT queries are allowed")
        try:
            with self._db_lock:
                cur = self.db.execute(statement)
                rows = cur.fetchmany(self.max_rows + 1)
                columns = [d[0] for d in cur.description or []]
        except sqlite3.Error as exc:
            raise ToolError(f"SQL error: {exc}. Tables: {LOG_TABLES}") from None
        return {"columns": columns, "rows": [list(r) for r in rows[: self.max_rows]],
                "truncated": len(rows) > self.max_rows}

    def toolbox(self) -> Toolbox:
        """All seven tools, bound to this environment."""
        env = self

        @tool
        def search_documents(query: Annotated[str, Field(min_length=2, max_length=80)],
                             k: Annotated[int, Field(ge=1, le=5)] = 2) -> list[dict[str, str]]:
            """Search Northbeam's internal documents, policies and tickets.

            Args:
                query: a few keywords.
                k: how many passages to return.
            """
            return env.search.search(query, k=k)

        @tool(timeout_s=10.0)
        def query_llm_log(sql: Annotated[str, Field(min_length=8, max_length=300)]) -> dict[str, Any]:
            """Run a read-only SQL query on the log of LLM calls.

            Args:
                sql: a SELECT statement. Tables: calls, calls_clean, users, teams, models.
            """
            return env.run_sql(sql)

        @tool
        def calculate(expression: Annotated[str, Field(min_length=1, max_length=120)]) -> int | float:
            """Do arithmetic on numbers.

            Args:
                expression: numbers with + - * / ( ).
            """
            return safe_calculate(expression)

        @tool
        def lookup_price(product: Annotated[str, Field(min_length=2, max_length=40)],
                         region: Literal["UK", "US"] = "UK",
                         year: Literal[2024, 2025] = 2025) -> list[dict[str, Any]]:
            """List price of a Northbeam product or service.

            Args:
                product: a SKU like NB-300 or a name like Beacon Pro.
                region: UK prices are in GBP, US prices in USD.
                year: price list year (the US list exists for 2025 only).
            """
            table = load_price_lists().get((region, year))
            if table is None:
                raise ToolError(f"there is no {region} price list for {year}")
            found = _match_products(table, product)
            if not found:
                raise ToolError(f"no product matching {product!r} in the {region} {year} list; "
                                f"SKUs: {', '.join(r['sku'] for r in table)}")
            return [{k: r[k] for k in ("sku", "product", "unit", "price", "currency")} for r in found[:5]]

        @tool
        def model_price(model: Annotated[str, Field(min_length=2, max_length=40)]) -> dict[str, Any]:
            """Token price of an LLM model in US dollars.

            Args:
                model: the model's name.
            """
            from reference.cost import UnknownModelPriceError, get_price  # noqa: PLC0415

            try:
                p = get_price(model)
            except UnknownModelPriceError:
                raise ToolError(f"no price known for {model!r}") from None
            return {"model": p.model, "usd_per_million_input_tokens": p.input_per_mtok,
                    "usd_per_million_output_tokens": p.output_per_mtok}

        @tool(side_effect=True, intent=TICKET_INTENT, user_supplied=("customer",), hidden=("idempotency_key",),
              retries=2)
        def create_support_ticket(customer: Annotated[str, Field(min_length=2, max_length=60)],
                                  subject: Annotated[str, Field(min_length=3, max_length=100)],
                                  priority: Literal["P1", "P2", "P3", "P4"] = "P3",
                                  idempotency_key: str = "") -> dict[str, Any]:
            """File a new customer support ticket.

            Args:
                customer: customer company name.
                subject: one line describing the problem.
                priority: P1 (most urgent) to P4.
            """
            return env.desk.create(customer, subject, priority, idempotency_key=idempotency_key or None)

        @tool(side_effect=True, intent=EMAIL_INTENT, user_supplied=("to",), hidden=("idempotency_key",))
        def send_email(to: Annotated[str, Field(max_length=80, pattern=EMAIL_PATTERN), AfterValidator(_email)],
                       subject: Annotated[str, Field(min_length=1, max_length=100)],
                       body: Annotated[str, Field(min_length=1, max_length=400)],
                       idempotency_key: str = "") -> dict[str, Any]:
            """Send an e-mail to an address the user gives.

            Args:
                to: recipient address.
                subject: subject line.
                body: message text.
            """
            return env.outbox.send(to, subject, body, idempotency_key=idempotency_key or None)

        return Toolbox([search_documents, query_llm_log, calculate, lookup_price, model_price,
                        create_support_ticket, send_email])


def tool_names() -> list[str]:
    """Names of the lab tools, in toolbox order (no environment needed)."""
    return ["search_documents", "query_llm_log", "calculate", "lookup_price", "model_price",
            "create_support_ticket", "send_email"]
