"""Admin reports for writing and maintaining mappings (spec esr-interface §5.8, §6).

- `mapping_profile`: every competence seen in the trust's achievements, with counts, its
  mapping status and up to three suggested Totara certifications by name, for the admin who
  writes the mapping file before the first live run.
- `possible_new_versions`: unmapped competences whose title stem (the text before
  " - <n> Year(s)") matches a mapped competence: a "possible new version" admin task
  (§5.8 rule 3). Nothing is ever remapped automatically.

Names are display text and hints only; nothing here decides a mapping. Counting is
whole-table; the per-competence loops run over distinct competences (tens), never achievements.
"""
from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cstf.config.mappings import MappingSet

_PERIOD = re.compile(r"\s*-\s*(\d+)\s*years?\s*$", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"and", "of", "the", "for", "in", "a", "an", "to", "nhs", "cstf", "level", "year", "years",
                   "local", "core", "skills"})


def _text(table: pa.Table | None, name: str) -> np.ndarray:
    if table is None or name not in table.column_names:
        return np.full(0 if table is None else table.num_rows, "", dtype=object)
    col = table[name]
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.fill_null(pc.utf8_trim_whitespace(col), "").to_numpy(zero_copy_only=False).astype(object)


def split_name(name: str) -> dict:
    """Pipe-separated competence name -> {raw, owner, framework, title, segments}; never relies on the count."""
    parts = (name or "").split("|")
    segs = [p.strip() for p in parts]
    nonempty = [s for s in segs if s]
    title = segs[2] if len(segs) >= 3 and segs[2] else (nonempty[-1] if nonempty else "")
    return {"raw": name or "", "owner": segs[0] if segs else "", "framework": segs[1] if len(segs) > 1 else "",
            "title": title, "segments": segs}


def title_stem(name: str) -> tuple[str, int | None]:
    """(stem, years): the title before " - <n> Year(s)"; years None when the title has no period."""
    title = split_name(name)["title"]
    m = _PERIOD.search(title)
    if not m:
        return title.strip(), None
    return title[:m.start()].strip(), int(m.group(1))


def _tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall((text or "").lower()) if t not in _STOP}


def _words(text: str) -> set[str]:
    """Tokens that carry meaning on their own (no bare level digits or periods)."""
    return {t for t in _tokens(text) if not t.isdigit()}


def _initials(title: str) -> str:
    return "".join(w[0] for w in _TOKEN.findall(title.lower()) if w not in _STOP)


def _score(stem: str, years: int | None, cert: dict) -> float:
    """0..1 likeness of a competence title to a certification (names, shortname, idnumber)."""
    full, short, idn = (str(cert.get(k) or "") for k in ("fullname", "shortname", "idnumber"))
    a = _words(stem)
    b = _words(" ".join((full, short, idn)))
    overlap = len(a & b) / len(a | _words(full)) if a and (a | _words(full)) else 0.0
    ratio = max(difflib.SequenceMatcher(None, stem.lower(), re.sub(r"^cstf\s+", "", full.lower())).ratio(),
                difflib.SequenceMatcher(None, stem.lower(), full.lower()).ratio())
    score = 0.6 * overlap + 0.4 * ratio
    # Acronyms in idnumbers (CSTF-IPC1-3Y): initials of the title, with the level digit.
    ini = _initials(stem)
    level = re.search(r"level\s*(\d+)", stem, re.IGNORECASE)
    id_tokens = _tokens(idn.replace("-", " ")) | _tokens(short.replace("-", " "))
    acronym = bool(ini) and len(ini) >= 2 and any(t.rstrip("0123456789") == ini for t in id_tokens)
    if not overlap and not acronym:
        return 0.0  # no word in common: a spelling likeness alone is noise
    if acronym:
        score += 0.2
    if level and any(t.endswith(level.group(1)) and t.rstrip("0123456789") for t in id_tokens):
        score += 0.05
    if years is not None:
        hay = f"{idn} {short} {cert.get('activeperiod') or ''}".lower()
        if re.search(rf"(?<!\d){years}\s*y", hay):
            score += 0.05
    return round(min(score, 1.0), 3)


def certification_catalogue(listed: list[dict]) -> list[dict]:
    """Totara's certification list (local_esrsync_certifications, as the state DB keeps it) in the shape the
    suggestions read: idnumber, shortname, fullname and activeperiod (Totara's name for the renewal period)."""
    return [{"idnumber": c["idnumber"], "shortname": c.get("shortname"), "fullname": c.get("fullname"),
             "activeperiod": c.get("active_period")} for c in listed]


def suggest_certifications(name: str, certifications: list[dict] | None, top: int = 3) -> list[dict]:
    if not certifications:
        return []
    stem, years = title_stem(name)
    scored = [{"idnumber": c.get("idnumber"), "fullname": c.get("fullname") or c.get("shortname") or "",
               "score": _score(stem, years, c)} for c in certifications]
    scored = [s for s in scored if s["score"] >= 0.3]
    scored.sort(key=lambda s: (-s["score"], str(s["idnumber"])))
    return scored[:top]


def mapping_profile(achievements: pa.Table, competences: pa.Table, mappings: MappingSet,
                    certifications: list[dict] | None) -> list[dict]:
    """Every competence seen in the achievements: counts, mapping status, name suggestions.

    Rows: competence_id, competence_name, achievements (rows), persons (distinct), retired
    (CDA Date To set), status ("confirmed" | "proposed" | "unmapped"), confirmed / proposed
    (certification idnumbers), suggestions (top 3 by name, {idnumber, fullname, score}).
    Sorted by achievements, most first.
    """
    A = pd.DataFrame({"c": _text(achievements, "competence_id"), "p": _text(achievements, "person_id"),
                      "n": _text(achievements, "competency_name")})
    A = A[A["c"] != ""]
    if A.empty:
        return []
    counts = A.groupby("c").agg(achievements=("p", "size"), persons=("p", lambda s: s[s != ""].nunique()),
                                cma_name=("n", "last"))
    C = pd.DataFrame({"c": _text(competences, "competence_id"), "name": _text(competences, "competence_name"),
                      "retired": (pc.is_valid(competences["date_to"]).to_numpy(zero_copy_only=False)
                                  if competences is not None and "date_to" in competences.column_names
                                  else np.zeros(0 if competences is None else competences.num_rows, bool))})
    C = C[C["c"] != ""].drop_duplicates("c", keep="last").set_index("c")
    F = mappings.frame()
    out = []
    for cid, r in counts.sort_values(["achievements"], ascending=False, kind="stable").iterrows():
        name = C["name"].get(cid) or r["cma_name"]
        mine = F[F["competence_id"] == cid]
        conf = sorted(set(mine.loc[mine["status"] == "confirmed", "certification"]))
        prop = sorted(set(mine.loc[mine["status"] == "proposed", "certification"]))
        out.append({
            "competence_id": cid, "competence_name": name, "achievements": int(r["achievements"]),
            "persons": int(r["persons"]), "retired": bool(C["retired"].get(cid, False)),
            "status": "confirmed" if conf else ("proposed" if prop else "unmapped"),
            "confirmed": conf, "proposed": prop,
            "suggestions": suggest_certifications(name, certifications),
        })
    return out


def possible_new_versions(competences: pa.Table, mappings: MappingSet) -> list[dict]:
    """Unmapped competences whose (owner, framework, title stem) matches a mapped competence.

    Rows: competence_id, competence_name, stem, years, date_from (ISO or None), matches
    ([{competence_id, competence_name, certifications, retired}]), message. Proposed and
    confirmed mappings both count as "mapped"; nothing is remapped automatically.
    """
    ids, names = _text(competences, "competence_id"), _text(competences, "competence_name")
    frm = (pc.cast(competences["date_from"], pa.string()).to_pylist()
           if competences is not None and "date_from" in competences.column_names else [None] * len(ids))
    to = (pc.is_valid(competences["date_to"]).to_numpy(zero_copy_only=False)
          if competences is not None and "date_to" in competences.column_names else np.zeros(len(ids), bool))
    C = pd.DataFrame({"c": ids, "name": names, "date_from": frm, "retired": to})
    C = C[C["c"] != ""].drop_duplicates("c", keep="last")
    parts = [split_name(n) for n in C["name"]]
    stems = [title_stem(n) for n in C["name"]]
    C["key"] = [f"{p['owner'].lower()}|{p['framework'].lower()}|{s.lower()}" for p, (s, _y) in zip(parts, stems)]
    C["stem"] = [s for s, _y in stems]
    C["years"] = [y for _s, y in stems]
    F = mappings.frame()
    mapped_ids = set(F["competence_id"])
    certs = F.groupby("competence_id")["certification"].agg(lambda s: sorted(set(s))).to_dict() if len(F) else {}
    mapped = C[C["c"].isin(mapped_ids) & (C["stem"] != "")]
    out = []
    for r in C[~C["c"].isin(mapped_ids) & (C["stem"] != "")].sort_values("c").itertuples():
        sib = mapped[(mapped["key"] == r.key) & (mapped["c"] != r.c)]
        if sib.empty:
            continue
        matches = [{"competence_id": s.c, "competence_name": s.name, "certifications": certs.get(s.c, []),
                    "retired": bool(s.retired)} for s in sib.sort_values("c").itertuples()]
        out.append({
            "competence_id": r.c, "competence_name": r.name, "stem": r.stem,
            "years": None if pd.isna(r.years) else int(r.years), "date_from": r.date_from,
            "matches": matches,
            "message": (f"possible new version of {', '.join(m['competence_id'] for m in matches)} "
                        f"('{r.stem}'): review and add a mapping with effective dates if it replaces it; "
                        "nothing is remapped automatically"),
        })
    return out
