"""The independent side of burnrate's pricing test: what the `genai-prices` package's own
`calc_price` says each case costs.

Reads a JSON list of cases on stdin; writes, for each, the model it matched and the cost:

- "request": `calc_price` of the whole usage as one request (its size tiers apply);
- "row": an aggregate of many requests, priced class by class — each class's tokens times what
  `calc_price` gives for one token of that class alone (below every tier).
"""
import datetime
import json
import sys
from decimal import Decimal

from genai_prices import Usage, calc_price

# Each class of a row alone, as one unit with the classes it is part of.
ALONE = {
    "uncached_input": {"input_tokens": 1},
    "cache_read": {"input_tokens": 1, "cache_read_tokens": 1},
    "cache_write_5m": {"input_tokens": 1, "cache_write_tokens": 1},
    "cache_write_1h": {"input_tokens": 1, "cache_write_tokens": 1, "cache_write_1h_tokens": 1},
    "output": {"output_tokens": 1},
    "web_searches": {"web_searches": 1},
}


def row_classes(u):
    """A row's usage split into classes that do not overlap."""
    cache_write = u.get("cache_write_tokens", 0)
    write_1h = u.get("cache_write_1h_tokens", 0)
    return {
        "uncached_input": u.get("input_tokens", 0) - u.get("cache_read_tokens", 0) - cache_write,
        "cache_read": u.get("cache_read_tokens", 0),
        "cache_write_5m": cache_write - write_1h,
        "cache_write_1h": write_1h,
        "output": u.get("output_tokens", 0),
        "web_searches": u.get("web_searches", 0),
    }


def price(case, usage):
    return calc_price(
        Usage(**usage),
        case["model"],
        provider_id=case["provider"],
        genai_request_timestamp=datetime.datetime.fromisoformat(case["at"]),
        price_context=case["context"] or None,
    )


out = []
for case in json.load(sys.stdin):
    try:
        if case["mode"] == "request":
            calc = price(case, case["usage"])
            out.append({"model": calc.model.id, "cost": str(calc.total_price)})
        else:
            total = Decimal(0)
            model = None
            for cls, n in row_classes(case["usage"]).items():
                if n:
                    calc = price(case, ALONE[cls])
                    model = calc.model.id
                    total += n * calc.total_price
            out.append({"model": model, "cost": str(total)})
    except Exception as e:  # reported, and the test says which case
        out.append({"error": f"{type(e).__name__}: {e}"})
json.dump(out, sys.stdout)
