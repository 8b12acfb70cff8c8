"""A stand-in neuPrint server on 127.0.0.1 over TLS, so tests run the real neuprint-python client offline.

Why it looks like this:

* neuprint-python refuses ``http://`` servers, so the fake speaks HTTPS with a throw-away CA made by
  ``trustme``. Tests trust that CA through the environment (:meth:`FakeNeuprint.client_environment`,
  applied with ``monkeypatch``); product code never turns certificate checks off.
* The client, not the test, builds every Cypher query (criteria, batching, ROI conditions) and parses every
  answer (``NotPrimary`` rows, roiInfo tables). The fake therefore recognises each query by the shape the
  client generates and *computes* the answer from a tiny in-memory connectome, instead of replaying canned
  responses that would hide a change in what the client asks. A query it cannot evaluate faithfully gets a
  400 (a bug in the fake itself, a 500) and is recorded in :attr:`FakeNeuprint.unanswered`, so a test fails
  loudly instead of passing on a guess.

Endpoints answered (those neuprint-python 0.6.x calls for ``Client``, ``fetch_roi_hierarchy``,
``fetch_neurons`` and ``fetch_adjacencies``):

* ``GET /api/dbmeta/datasets``: the dataset list ``Client(...)`` checks the dataset name against.
* ``GET /api/version``: asked before every Cypher query to decide between Arrow and JSON; the fake reports a
  server older than the Arrow endpoint (1.7.3), so every answer travels as JSON.
* ``POST /api/custom/custom``: Cypher. Shapes understood: the ``:Meta`` metadata query of ``fetch_meta``,
  ``MATCH (n:Meta) RETURN n.neuronProperties``, node tables (``MATCH (n :Neuron)`` / ``(n:Segment)`` with
  bodyId and ROI conditions, ``RETURN n.prop as prop, ...``), timeboxed node counts
  (``CALL apoc.cypher.runTimeboxed(...)``) and connection tables
  (``MATCH (n:Segment)-[e:ConnectsTo]->(m:Segment)``).

Every request must carry ``Authorization: Bearer <token>`` when the server is built with a token (401
otherwise), and ``failures`` makes chosen paths answer with an error status.
"""

from __future__ import annotations

import ast
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent

import trustme

DATASET = "hemibrain:v1.2.1"
SERVER_VERSION = "1.6.3"  # below 1.7.3: the client uses the JSON endpoint, which is the one answered here

# The ROI hierarchy, as nested {name: children}. Primary ROIs do not overlap; super-ROIs (CX, LX(R),
# MB(+ACA)(R), MB(R)) contain primaries, sub-ROIs (EBr1, FBl1, ...) lie inside one primary.
ROI_TREE = {"hemibrain": {
    "CX": {"AB(R)": {}, "EB": {"EBr1": {}, "EBr3d": {}}, "FB": {"FBl1": {}, "FBl2": {}},
           "NO": {"NO1(R)": {}, "NO2(R)": {}}, "PB": {"PB(L1)": {}, "PB(R1)": {}}},
    "LX(R)": {"BU(R)": {}, "LAL(R)": {}},
    "MB(+ACA)(R)": {"MB(R)": {"CA(R)": {}, "PED(R)": {}}},
}}
PRIMARY_ROIS = ("AB(R)", "BU(R)", "CA(R)", "EB", "FB", "LAL(R)", "NO", "PB", "PED(R)")

ER4D, PFND = 720575940379999998, 720575940379999999  # ids above 2**53: a float64 round trip would merge them


@dataclass(frozen=True)
class Body:
    """One body. ``synapses`` maps primary and sub-primary ROIs to (pre, post) counts; super-ROI entries
    and the neuron totals are derived, and ``outside`` counts synapses in no primary ROI at all."""

    bodyId: int
    type: str | None
    instance: str | None
    synapses: dict[str, tuple[int, int]]
    outside: tuple[int, int] = (0, 0)
    neuron: bool = True               # False: an unlabelled fragment, a :Segment but not a :Neuron
    soma: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Connection:
    """One directed connection. ``weights`` maps primary (and optionally sub-primary) ROIs to synapse
    counts; ``outside`` synapses lie in no primary ROI (the client reports them as ``NotPrimary``)."""

    pre: int
    post: int
    weights: dict[str, int]
    outside: int = 0


BODIES = (
    Body(1001, "EPG", "EPG(PB08)_L7", {"EB": (8, 20), "EBr1": (3, 5), "PB": (6, 10), "PB(L1)": (6, 10)},
         outside=(1, 2), soma=(100, 200, 300)),
    Body(1002, "EPG", "EPG(PB08)_R7", {"EB": (7, 18), "PB": (5, 12)}, outside=(0, 1), soma=(110, 210, 310)),
    Body(1003, "PEN_a(PEN1)", "PEN_a(PEN1)_R", {"PB": (4, 15), "NO": (0, 9), "NO1(R)": (0, 9), "EB": (12, 3)}),
    Body(1004, "Delta7", "Delta7(PB)_L", {"PB": (30, 40), "PB(R1)": (10, 12)}),
    Body(1007, "hDeltaB", "hDeltaB_R", {"FB": (25, 25), "FBl2": (5, 5)}),
    Body(1008, "PFL3", "PFL3_R", {"PB": (0, 8), "FB": (1, 30), "LAL(R)": (40, 2)}),
    Body(1009, "FB4Y", None, {"FB": (3, 6)}, outside=(10, 10)),
    Body(1010, "SA1", "SA1_R", {"AB(R)": (4, 4)}),
    Body(1011, "LAL004", "LAL004_R", {"LAL(R)": (12, 9)}),
    Body(1012, "MBON01", "MBON01(y5B'2a)_R", {"CA(R)": (0, 20), "PED(R)": (3, 3)}),
    Body(1013, None, None, {"EB": (0, 1)}, neuron=False),
    Body(ER4D, "ER4d", "ER4d_R", {"EB": (10, 2), "EBr3d": (4, 1), "BU(R)": (0, 30)}, soma=(5, 6, 7)),
    Body(PFND, "PFNd", "PFNd_R", {"PB": (2, 20), "FB": (15, 4), "FBl1": (6, 2), "NO": (5, 10)}),
)

CONNECTIONS = (
    Connection(1001, 1003, {"EB": 3, "EBr1": 1, "PB": 2}, outside=1),
    Connection(1003, 1002, {"EB": 4}),
    Connection(1002, 1004, {"PB": 5}),
    Connection(1004, 1001, {"PB": 7, "PB(R1)": 3}),
    Connection(ER4D, 1001, {"EB": 2}),
    Connection(ER4D, 1002, {"EB": 1}),
    Connection(PFND, 1007, {"FB": 3, "NO": 1}, outside=2),
    Connection(1007, 1008, {"FB": 9}),
    Connection(1009, PFND, {}, outside=3),
    Connection(1008, 1011, {"LAL(R)": 4}),
    Connection(1011, ER4D, {"BU(R)": 6}),
    Connection(1012, 1008, {"LAL(R)": 2}),
    Connection(1010, 1009, {"AB(R)": 2}),
    Connection(1013, 1001, {"EB": 1}),
)


def _counts(pre: int, post: int) -> dict[str, int]:
    """A hemibrain-style roiInfo entry; downstream/upstream/mito follow fixed ratios of pre/post."""
    return {"pre": pre, "post": post, "downstream": 3 * pre, "upstream": post, "mito": post // 2}


def _parents(tree: dict, parent: str | None = None, out: dict | None = None) -> dict[str, str | None]:
    out = {} if out is None else out
    for name, children in tree.items():
        out[name] = parent
        _parents(children, name, out)
    return out


ROI_PARENT = _parents(ROI_TREE)


def _super_rois(roi: str) -> list[str]:
    """Strict ancestors of ``roi`` below the dataset root (CX for EB; MB(R) and MB(+ACA)(R) for CA(R))."""
    chain, parent = [], ROI_PARENT[roi]
    while ROI_PARENT.get(parent) is not None:
        chain.append(parent)
        parent = ROI_PARENT[parent]
    return chain


class UnsupportedQuery(ValueError):
    """The fake cannot evaluate this Cypher faithfully (an unknown shape or condition)."""


@dataclass
class Request:
    """One request as the server saw it; ``shape`` names the recognised Cypher shape."""

    method: str
    path: str
    authorization: str | None
    cypher: str | None = None
    shape: str | None = None


@dataclass
class FakeNeuprint:
    """A TLS neuPrint stand-in; use as a context manager (starts on enter, stops on exit).

    ``token``: the bearer token every request must carry (None accepts any). ``failures``: path -> HTTP
    status to answer instead (e.g. ``{"/api/custom/custom": 500}``). ``bodies``/``connections``: the
    in-memory connectome (defaults: a dozen CX and non-CX bodies with ROI-split connections).
    """

    token: str | None = "fake-token"
    failures: dict[str, int] = field(default_factory=dict)
    bodies: tuple[Body, ...] = BODIES
    connections: tuple[Connection, ...] = CONNECTIONS
    requests: list[Request] = field(default_factory=list, init=False)
    unanswered: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        named = {roi for body in self.bodies for roi in body.synapses}
        named |= {roi for connection in self.connections for roi in connection.weights}
        if named - set(ROI_PARENT):
            raise ValueError(f"ROIs {sorted(named - set(ROI_PARENT))} are not in ROI_TREE")
        self._lock = threading.Lock()
        self._nodes = {body.bodyId: self._node(body) for body in self.bodies}
        self._labels = {body.bodyId: {"Segment", "Neuron"} if body.neuron else {"Segment"} for body in self.bodies}
        self._edges = [self._edge(connection) for connection in self.connections]
        self._ca = trustme.CA()
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> "FakeNeuprint":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        httpd.fake = self
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-neuprint",
                         daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def client_environment(self, directory: str | Path) -> dict[str, str]:
        """Environment that makes ``requests`` trust this server's CA (written to ``directory``) and reach it
        directly even when a proxy is configured; apply each item with ``monkeypatch.setenv``."""
        bundle = Path(directory) / "fake-neuprint-ca.pem"
        self._ca.cert_pem.write_to_path(str(bundle))
        return {"REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle), "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost"}

    def shapes(self) -> list[str]:
        """The recognised Cypher shapes, in request order (e.g. to count connection batches)."""
        return [request.shape for request in self.requests if request.shape]

    # --- the in-memory database ----------------------------------------------------------------------

    @staticmethod
    def _node(body: Body) -> dict:
        """Node properties as neuPrint stores them: roiInfo as a JSON string, one boolean flag per ROI."""
        roi_info = {roi: _counts(*counts) for roi, counts in body.synapses.items()}
        for roi, (pre, post) in body.synapses.items():
            if roi in PRIMARY_ROIS:
                for parent in _super_rois(roi):
                    entry = roi_info.setdefault(parent, _counts(0, 0))
                    for key, value in _counts(pre, post).items():
                        entry[key] += value
        pre = sum(c[0] for roi, c in body.synapses.items() if roi in PRIMARY_ROIS) + body.outside[0]
        post = sum(c[1] for roi, c in body.synapses.items() if roi in PRIMARY_ROIS) + body.outside[1]
        node = {"bodyId": body.bodyId, "type": body.type, "instance": body.instance, **_counts(pre, post),
                "size": 1000 * (pre + post), "status": "Traced" if body.neuron else None,
                "statusLabel": "Roughly traced" if body.neuron else None, "cropped": False,
                "cellBodyFiber": None, "roiInfo": json.dumps(roi_info)}
        if body.soma is not None:
            node["somaLocation"] = {"type": "Point", "coordinates": list(body.soma), "crs": {"name": "cartesian-3d"}}
            node["somaRadius"] = 250.0
        node.update({roi: True for roi in roi_info})
        return {key: value for key, value in node.items() if value is not None}

    @staticmethod
    def _edge(connection: Connection) -> dict:
        roi_info = {roi: {"pre": weight, "post": weight} for roi, weight in connection.weights.items()}
        for roi, weight in connection.weights.items():
            if roi in PRIMARY_ROIS:
                for parent in _super_rois(roi):
                    entry = roi_info.setdefault(parent, {"pre": 0, "post": 0})
                    entry["pre"] += weight
                    entry["post"] += weight
        weight = sum(w for roi, w in connection.weights.items() if roi in PRIMARY_ROIS) + connection.outside
        return {"pre": connection.pre, "post": connection.post, "weight": weight, "weightHP": max(weight - 1, 0),
                "roiInfo": json.dumps(roi_info)}

    def _meta(self) -> dict:
        """The :Meta node: JSON-string properties as stored, parsed copies as the fetch_meta query returns."""
        def hierarchy(name: str, children: dict) -> dict:
            node = {"name": name}
            if children:
                node["children"] = [hierarchy(child, grand) for child, grand in children.items()]
            return node

        # Every ROI of the hierarchy is listed, as in neuPrint, even one without synapses.
        roi_totals = {roi: {"pre": 0, "post": 0} for roi, parent in ROI_PARENT.items() if parent is not None}
        for node in self._nodes.values():
            for roi, counts in json.loads(node["roiInfo"]).items():
                roi_totals[roi]["pre"] += counts["pre"]
                roi_totals[roi]["post"] += counts["post"]
        roi_hierarchy = hierarchy(*next(iter(ROI_TREE.items())))
        properties = {"bodyId": "INTEGER", "type": "STRING", "instance": "STRING", "pre": "INTEGER",
                      "post": "INTEGER", "downstream": "INTEGER", "upstream": "INTEGER", "mito": "INTEGER",
                      "size": "INTEGER", "status": "STRING", "statusLabel": "STRING", "cropped": "BOOLEAN",
                      "cellBodyFiber": "STRING", "somaLocation": "POINT", "somaRadius": "FLOAT",
                      "roiInfo": "STRING"}
        meta = {"dataset": DATASET.split(":")[0], "tag": DATASET.split(":")[1], "primaryRois": list(PRIMARY_ROIS),
                "superLevelRois": ["CX", "LX(R)", "MB(+ACA)(R)"], "roiInfo": json.dumps(roi_totals),
                "roiHierarchy": json.dumps(roi_hierarchy), "neuronProperties": json.dumps(properties),
                "totalPreCount": sum(t["pre"] for t in roi_totals.values()),
                "totalPostCount": sum(t["post"] for t in roi_totals.values())}
        return {"meta": meta, "roiInfo": roi_totals, "roiHierarchy": roi_hierarchy, "neuroglancerInfo": {},
                "neuroglancerMeta": [], "statusDefinitions": {}}

    # --- Cypher ---------------------------------------------------------------------------------------

    def answer(self, cypher: str) -> tuple[str, dict]:
        """(shape, neuPrint JSON ``{"columns", "data"}``) for one query, or :class:`UnsupportedQuery`."""
        text = dedent(cypher).strip()
        if "apoc.cypher.runTimeboxed" in text:
            inner = re.search(r'runTimeboxed\("(.*)",\s*\{\}', text, re.S)
            if inner is None:
                raise UnsupportedQuery("timeboxed query without an inner query")
            rows = self._node_rows(inner.group(1).replace('\\"', '"'))
            return "count", {"columns": ["count"], "data": [[len(rows)]]}
        if re.fullmatch(r"MATCH \(n:Meta\) RETURN n\.neuronProperties", text):
            properties = self._meta()["meta"]["neuronProperties"]
            return "neuron_keys", {"columns": ["n.neuronProperties"], "data": [[properties]]}
        if text.startswith("MATCH (m:Meta)") and "apoc.convert.fromJsonMap(m.roiHierarchy)" in text:
            meta = self._meta()
            return "meta", {"columns": list(meta), "data": [list(meta.values())]}
        if "-[e:ConnectsTo]->" in text:
            return "connections", self._connections(text)
        if _NODE_MATCH.search(text):
            rows = self._node_rows(text)
            columns, values = self._returns(text, rows)
            return "neurons", {"columns": columns, "data": values}
        raise UnsupportedQuery("unknown query shape")

    def _node_rows(self, text: str) -> list[dict]:
        """Bindings ``{var: node}`` for ``MATCH (var :Label) WHERE ...``, ordered by bodyId."""
        match = _NODE_MATCH.search(text)
        if match is None:
            raise UnsupportedQuery("no node pattern")
        var, label = match.groups()
        head = _before_return(text)
        keep = _conditions(head, var, _with_lists(text))
        _reject_leftovers(head, var, keep.understood)
        return [{var: node} for body_id, node in sorted(self._nodes.items())
                if label in self._labels[body_id] and keep(node)]

    def _connections(self, text: str) -> dict:
        pattern = re.search(r"MATCH \(n:(Neuron|Segment)\)-\[e:ConnectsTo\]->\(m:(Neuron|Segment)\)", text)
        if pattern is None:
            raise UnsupportedQuery("unknown connection pattern")
        lists = _with_lists(text)
        head = _before_return(text)
        keep_n, keep_m = _conditions(head, "n", lists), _conditions(head, "m", lists)
        minimum = re.search(r"e\.weight >= (\d+)", head)
        _reject_leftovers(head, "n", keep_n.understood)
        _reject_leftovers(head, "m", keep_m.understood)
        _reject_leftovers(re.sub(r"e\.weight >= \d+", "", head), "e", [])
        rows = []
        for edge in self._edges:
            pre, post = self._nodes[edge["pre"]], self._nodes[edge["post"]]
            if (pattern.group(1) in self._labels[edge["pre"]] and pattern.group(2) in self._labels[edge["post"]]
                    and keep_n(pre) and keep_m(post)
                    and (minimum is None or edge["weight"] >= int(minimum.group(1)))):
                rows.append({"n": pre, "m": post, "e": edge})
        columns, values = self._returns(text, rows)
        return {"columns": columns, "data": values}

    @staticmethod
    def _returns(text: str, rows: list[dict]) -> tuple[list[str], list[list]]:
        """Evaluate the RETURN items (``v.prop``, ``coalesce(v.prop, x)``) for each binding."""
        clause = re.search(r"\bRETURN\b(.*?)(?:\bORDER BY\b|$)", text, re.S).group(1)
        columns, getters = [], []
        for item in _split_top_level(clause):
            match = (re.fullmatch(rf"coalesce\((?P<var>\w)\.(?P<prop>{_PROPERTY}), (?P<default>.+)\) as (?P<alias>\w+)",
                                  item)
                     or re.fullmatch(rf"(?P<var>\w)\.(?P<prop>{_PROPERTY}) as (?P<alias>\w+)", item))
            if match is None:
                raise UnsupportedQuery(f"RETURN item {item!r}")
            default = match.groupdict().get("default")
            columns.append(match["alias"])
            getters.append((match["var"], match["prop"].strip("`"),
                            None if default is None else ast.literal_eval(default)))
        # Absent properties are absent keys (as in Neo4j), so they come back as null or the coalesce default.
        data = [[row[var].get(prop, default) for var, prop, default in getters] for row in rows]
        return columns, data


# --- pieces of the Cypher the client generates ------------------------------------------------------------

_PROPERTY = r"(?:`[^`]+`|\w+)"
_NODE_MATCH = re.compile(r"MATCH \(([a-z]\w*) ?:(Neuron|Segment)\)")


class _Criteria:
    """Node predicate built from the bodyId and ROI-flag conditions on one match variable."""

    def __init__(self) -> None:
        self.body_ids: set[int] | None = None
        self.roi_groups: list[tuple[str, list[str]]] = []   # (OR|AND, ROI flags)
        self.understood: list[str] = []                     # condition texts consumed

    def __call__(self, node: dict) -> bool:
        if self.body_ids is not None and node["bodyId"] not in self.body_ids:
            return False
        for logic, rois in self.roi_groups:
            flags = [bool(node.get(roi)) for roi in rois]
            if not (any(flags) if logic == "OR" else all(flags)):
                return False
        return True


def _conditions(text: str, var: str, lists: dict[str, list]) -> _Criteria:
    criteria = _Criteria()
    for match in re.finditer(rf"\b{var}\.bodyId (?:= (-?\d+)|in (\[[^\]]*\])|in (\w+))", text):
        if match.group(1):
            ids = [int(match.group(1))]
        elif match.group(2):
            ids = ast.literal_eval(match.group(2))
        elif match.group(3) in lists:
            ids = lists[match.group(3)]
        else:
            raise UnsupportedQuery(f"unknown list variable {match.group(3)!r}")
        criteria.body_ids = set(ids) if criteria.body_ids is None else criteria.body_ids & set(ids)
        criteria.understood.append(match.group(0))
    group = rf"\(({var}\.{_PROPERTY}(?:\s+(?:OR|AND)\s+{var}\.{_PROPERTY})*)\)"
    for match in re.finditer(group, text):
        logic = "AND" if " AND " in match.group(1) else "OR"
        rois = [name.strip("`") for name in re.findall(rf"{var}\.({_PROPERTY})", match.group(1))]
        criteria.roi_groups.append((logic, rois))
        criteria.understood.append(match.group(0))
    return criteria


def _reject_leftovers(text: str, var: str, understood: list[str]) -> None:
    """Refuse a query with a condition on ``var`` that the fake did not evaluate (status, cropped, ...)."""
    for piece in understood:
        text = text.replace(piece, "")
    leftover = re.search(rf"\b{var}\.{_PROPERTY}", text)
    if leftover:
        raise UnsupportedQuery(f"condition on {leftover.group(0)!r}")


def _with_lists(text: str) -> dict[str, list]:
    """Literal lists bound in WITH clauses (``[1, 2, 3] as n_search_bodyId``)."""
    return {name: ast.literal_eval(values) for values, name in re.findall(r"(\[[^\[\]]*\]) as (\w+)", text)}


def _before_return(text: str) -> str:
    """The MATCH/WHERE part of a query, without the MATCH pattern itself."""
    head = re.split(r"\bRETURN\b", text)[0]
    return re.sub(r"MATCH \([^)]*\)(-\[[^\]]*\]->\([^)]*\))?", "", head)


def _split_top_level(clause: str) -> list[str]:
    """Split a RETURN clause on commas outside parentheses."""
    items, depth, current = [], 0, ""
    for char in clause:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return [" ".join(item.split()) for item in items if item]


# --- HTTP --------------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`FakeNeuprint` attached to the server."""

    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib signature
        """Keep test output clean; :attr:`FakeNeuprint.requests` records every request instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake: FakeNeuprint = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        request = Request(method, self.path, self.headers.get("Authorization"), body.get("cypher"))
        with fake._lock:
            fake.requests.append(request)
        if self.path in fake.failures:
            return self._reply(fake.failures[self.path], {"error": f"fake neuPrint: injected failure on {self.path}"})
        if fake.token is not None and request.authorization != f"Bearer {fake.token}":
            return self._reply(401, {"error": "invalid or expired token"})
        if method == "GET" and self.path == "/api/dbmeta/datasets":
            return self._reply(200, {DATASET: {"uuid": "fake", "ROIs": sorted(ROI_PARENT)[1:], "hidden": False}})
        if method == "GET" and self.path == "/api/version":
            return self._reply(200, {"Version": SERVER_VERSION})
        if method == "POST" and self.path == "/api/custom/custom":
            if body.get("dataset") != DATASET:
                return self._reply(400, {"error": f"dataset {body.get('dataset')!r} not found"})
            try:
                request.shape, result = fake.answer(request.cypher or "")
            except Exception as error:  # an unknown shape (400) or a bug in the fake (500): both recorded
                with fake._lock:
                    fake.unanswered.append(f"{type(error).__name__}: {error}\n{request.cypher}")
                status = 400 if isinstance(error, UnsupportedQuery) else 500
                return self._reply(status, {"error": f"fake neuPrint cannot answer this query ({error})"})
            return self._reply(200, result)
        return self._reply(404, {"error": f"no endpoint {method} {self.path}"})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
