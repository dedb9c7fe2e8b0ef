"""Date: and Received: parsing into (epoch, "+hhmm") as lei does (spec §4.5).

A strict RFC 5322-ish pattern is tried first; if it fails a free-form parser
stands in for Perl's Date::Parse.  `None` means "no parsable header": callers
apply lei's fallback (the import time).
"""
from __future__ import annotations

import calendar
import re
import time

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MONTH_RX = (r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
             r"|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_ZONES = {"EST": -500, "EDT": -400, "CST": -600, "CDT": -500, "MST": -700, "MDT": -600,
          "PST": -800, "PDT": -700, "UT": 0, "GMT": 0, "Z": 0}
_STRICT = re.compile(
    r"(?:[A-Za-z]+,?\s+)?(\d{1,2}),?\s+(" + _MONTH_RX + r")\s+(\d{2,4})\s+"
    r"(\d\d?)[:.](\d\d| \d)(?:[:.](\d\d| \d))?\s+"
    r"([+-]*)(\d+|EST|EDT|CST|CDT|MST|MDT|PST|PDT|UT|GMT|Z)(?=\s|$)"
)
_RECEIVED = re.compile(r"\d{1,2}\s+[A-Za-z]+\s+\d{4}\s+\d\d\D\d\d\D\d\d\s+[+-]\d{4}")


def _zone_hhmm(digits: str) -> tuple[int, int]:
    if len(digits) == 1:
        return int(digits), 0
    if len(digits) == 2:
        return 0, int(digits)
    return int(digits[:-2]), int(digits[-2:])


def _finish(y: int, mo: int, d: int, h: int, mi: int, s: int, sign: int, zh: int, zm: int):
    zh += zm // 60
    zm %= 60
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]
            and 0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 61):
        return None
    off = sign * (zh * 3600 + zm * 60)
    wall = calendar.timegm((y, mo, d, h, mi, s))
    if wall < 0:  # lei rejects pre-1970 wall-clock times, not negative results
        return None
    epoch = wall - off
    if zh >= 14:
        return epoch, "+0000"
    return epoch, f"{'-' if sign < 0 and (zh or zm) else '+'}{zh:02d}{zm:02d}"


def _year(y: str) -> int:
    yi = int(y)
    if len(y) <= 3:
        yi += 1900
        if yi < 1950:
            yi += 100
    return yi


def _strict(value: str):
    m = _STRICT.search(value)
    if not m:
        return False
    d, mon, y, h, mi, s, signs, zone = m.groups()
    if zone.isdigit():
        zh, zm = _zone_hhmm(zone)
        sign = -1 if signs[:1] == "-" else 1
    else:
        z = _ZONES[zone]
        sign = -1 if z < 0 else 1
        zh, zm = abs(z) // 100, abs(z) % 100
        if signs[:1] == "-":
            sign = -sign
    return _finish(_year(y), _MONTHS[mon[:3].lower()], int(d), int(h), int(mi.strip()),
                   int(s.strip()) if s else 0, sign, zh, zm)


# --- free-form fallback: behaves like Perl's Date::Parse str2time/strptime ----

_DP_MONTHS = {"january": 0, "february": 1, "march": 2, "april": 3, "may": 4, "june": 5, "july": 6,
              "august": 7, "september": 8, "sept": 8, "october": 9, "november": 10, "december": 11}
_DP_MONTHS.update({k[:3]: v for k, v in list(_DP_MONTHS.items())})
_DP_DAYS = ["sunday", "monday", "tuesday", "tues", "wednesday", "wednes", "thursday", "thur",
            "thurs", "friday", "saturday"]
_DP_DAYS += [d[:3] for d in _DP_DAYS]
_DAYPAT = "|".join(sorted(set(_DP_DAYS), reverse=True))
_MONPAT = "|".join(sorted(_DP_MONTHS, reverse=True))
_SUFPAT = "|".join(sorted({"th", "st", "nd", "rd"}, reverse=True))
# Time::Zone abbreviations (seconds east of UTC); DST names only where no standard one exists
_TZ = {
    "act": -18000, "aest": 36000, "ahst": -36000, "akst": -32400, "ast": -14400, "at": -7200,
    "brt": -10800, "bt": 10800, "cat": -36000, "cct": 28800, "cet": 3600, "cst": -21600,
    "east": 36000, "ect": 3600, "eet": 7200, "est": -18000, "ewt": -14400, "fnt": -7200,
    "fwt": 3600, "gmt": 0, "gst": 36000, "hkt": 28800, "hst": -36000, "idle": 43200,
    "idlw": -43200, "jst": 32400, "kst": 32400, "met": 3600, "mewt": 3600, "mez": 3600,
    "mnt": -14400, "msk": 10800, "mst": -25200, "nt": -39600, "nzst": 43200, "nzt": 43200,
    "pst": -28800, "set": 3600, "swt": 3600, "ukr": 7200, "ut": 0, "utc": 0, "wat": -3600,
    "wet": 0, "wst": 28800, "yst": -32400, "zp4": 14400, "zp5": 18000, "zp6": 21600,
    "adt": -10800, "aedt": 39600, "akdt": -28800, "brst": -7200, "bst": 3600, "cdt": -18000,
    "cest": 7200, "eadt": 39600, "edt": -14400, "eest": 10800, "fst": 7200, "hdt": -32400,
    "kdt": 36000, "mdt": -21600, "mest": 7200, "metdst": 7200, "msd": 14400, "nzd": 46800,
    "nzdt": 46800, "pdt": -25200, "sst": 7200, "wadt": 28800, "ydt": -28800,
}
_A = re.A
_DP_ISO = re.compile(r"\s(\d{4})([-:]?)(\d\d?)\2(\d\d?)"
                     r"(?:[-Tt ](\d\d?)(?:([-:]?)(\d\d?)(?:\6(\d\d?)(?:[.,](\d+))?)?)?)?(?=\D)", _A)
_DP_TIME = re.compile(r"[:\s](\d\d?):(\d\d?)(:(\d\d?)(?:\.\d+)?)?(z)?\s*(?:([ap])\.?m?\.?)?\s", _A)
_DP_HOUR = re.compile(r"\s(\d\d?)\s*([ap])\.?m?\.?\s", _A)
_DP_MERID = re.compile(r" ([ap])\.?m?\.?\s", _A)
_DP_DATES = [
    re.compile(r"\s(\d\d?)([\-\./])(" + _MONPAT + r")(\2(\d\d+))?\s", _A),
    re.compile(r"\s(\d+)([\-\./])(\d\d?)(\2(\d+))?\s", _A),
    re.compile(r"\s(\d+)\s*(" + _SUFPAT + r")?\s*(" + _MONPAT + ")", _A),
    re.compile("(" + _MONPAT + r")\s*(\d+)\s*(" + _SUFPAT + r")?\s", _A),
    re.compile("(" + _MONPAT + r")([\/-])(\d+)[\/-]", _A),
    re.compile(r"\s(\d\d)(\d\d)(\d\d)\s", _A),
]
_DP_YEAR = re.compile(r"\s(\d{2}(\d{2})?)[\s\.,]", _A)
_DP_ZNAME = re.compile(r"\s\"?([a-z]{3,4})(dst|\d+[a-z]*|_[a-z]+)?\"?\s", _A)
_DP_ZNUM = re.compile(r"\s([a-z]{3,4})?([\-\+]?)-?(\d\d?):?(\d\d)?(00)?\s", _A)
_DP_ZNUM2 = re.compile(r"\s([a-z]{3,4})?([\-\+]?)-?(\d\d?)(\d\d)?(00)?\s", _A)


def _cut(rx, s: str):
    m = rx.search(s)
    return (m, s[: m.start()] + " " + s[m.end():]) if m else (None, s)


def _num_zone(m) -> int | None:
    zone = _TZ.get(m.group(1)) if m.group(1) else 0
    if zone is None:
        return None
    h = int(m.group(2) + m.group(3))
    mins = int(m.group(2) + m.group(4)) if m.group(4) is not None else 0
    return zone + 60 * (mins + 60 * h)


def _strptime(value: str):
    """(ss, mm, hh, day, month0, year, zone_seconds, have_century) or None."""
    s = value.lower()
    while True:
        s2 = re.sub(r"\([^()]*\)", " ", s)
        if s2 == s:
            break
        s = s2
    s = " " + s.replace("\n", " ") + " "
    s = re.sub(r"([\d\w\s])[.,]\s", r"\1 ", s, flags=_A).replace(",", " ")
    s = re.sub("(" + _DAYPAT + r")\s*(den\s)?\b", " ", s, count=1, flags=_A)
    if not s.strip():
        return None
    year = month = day = hh = mm = ss = zone = None
    merid = 24
    m, s = _cut(_DP_ISO, s)
    if m:
        year, month, day = int(m[1]), int(m[3]) - 1, int(m[4])
        hh, mm, ss = (int(x) if x else None for x in (m[5], m[7], m[8]))
    if hh is None:
        m, s = _cut(_DP_TIME, s)
        if m:
            hh, mm, ss = int(m[1]), int(m[2]), int(m[4]) if m[4] else None
            if m[5]:
                zone = 0
            if m[6]:
                merid = 0 if m[6] == "a" else 12
        else:
            m, s = _cut(_DP_HOUR, s)
            if m:
                hh, mm, ss, merid = int(m[1]), 0, 0, (0 if m[2] == "a" else 12)
    if hh is not None and hh <= 12:
        m, s = _cut(_DP_MERID, s)
        if m:
            merid = 0 if m[1] == "a" else 12
    if year is None:
        for i, rx in enumerate(_DP_DATES):
            m, s = _cut(rx, s)
            if not m:
                continue
            if i == 0:
                month, day = _DP_MONTHS[m[3]], int(m[1])
                year = int(m[5]) if m[5] else None
            elif i == 1:
                month, day = int(m[1]) - 1, int(m[3])
                if m[5]:
                    year = int(m[5])
                    if month > 12:
                        year, month, day = int(m[1]), int(m[3]) - 1, int(m[5])
                    if len(str(year)) > 2 and year < 1901:
                        return None
            elif i == 2:
                month, day = _DP_MONTHS[m[3]], int(m[1])
            elif i == 3:
                month, day = _DP_MONTHS[m[1]], int(m[2])
            elif i == 4:
                month, day = _DP_MONTHS[m[1]], int(m[3])
            else:
                year, month, day = int(m[1]), int(m[2]) - 1, int(m[3])
            break
        if year is None:
            m, s = _cut(_DP_YEAR, s)
            if m:
                year = int(m[1])
    dst = False
    if re.search(r"\bdst\b", s, _A):
        dst, s = True, re.sub(r"\bdst\b", "", s, count=1, flags=_A)
    m, s = _cut(_DP_ZNAME, s)
    if m:
        dst = dst or m[2] == "dst"
        zone = _TZ.get(m[1])
        if zone is None:
            return None
    else:
        m, s = _cut(_DP_ZNUM, s)
        if m:
            zone = _num_zone(m)
            if zone is None:
                return None
    if s.strip():
        if re.fullmatch(r"\s*(ut?|z)\s*", s):
            zone, s = 0, ""
        else:
            m, s = _cut(_DP_ZNUM2, s)
            if m:
                zone = _num_zone(m)
                if zone is None:
                    return None
        if s.strip():
            return None
    if hh is not None:
        if hh == 12 and merid == 0:
            hh = 0
        elif hh != 12 and merid == 12:
            hh += 12
    century = year is not None and year > 1900
    if zone is not None and dst:
        zone += 3600
    return ss, mm, hh, day, month, year, zone, century


def _freeform(value: str):
    t = _strptime(value)
    if t is None:
        return None
    ss, mm, hh, day, month, year, zone, century = t
    if year is None or month is None or day is None:
        return None  # str2time would borrow today's date; lei ignores such dates
    now = time.gmtime()
    if not century:
        if year < 100:  # Time::Local's rolling century
            brk = (now.tm_year + 50) % 100
            year += 1900 if year > brk else 2000
        elif year < 1000:
            year += 1900
    hh, mm, ss = hh or 0, mm or 0, ss or 0
    if not (month <= 11 and 1 <= day <= 31 and hh <= 23 and mm <= 59 and ss <= 59):
        return None
    if day > calendar.monthrange(year, month + 1)[1]:
        return None
    wall = calendar.timegm((year, month + 1, day, hh, mm, ss))
    if wall < 0:
        return None
    epoch = wall - (zone or 0)
    off = abs(zone or 0) // 60
    zh, zm = divmod(off, 60)
    if zh >= 14:
        return epoch, "+0000"
    return epoch, f"{'-' if (zone or 0) < 0 else '+'}{zh:02d}{zm:02d}"


def parse_date(value: str) -> tuple[int, str] | None:
    """(epoch seconds, "+hhmm") for one Date-like string, or None.

    When the strict pattern matches, its verdict is final (an out-of-range
    date is not retried free-form).
    """
    r = _strict(value)
    return _freeform(value) if r is False else r


def parse_received(value: str) -> tuple[int, str] | None:
    """Date inside one Received: value (§4.5)."""
    m = _RECEIVED.search(value)
    return parse_date(m.group()) if m else None


def _first(values: list[str], fn):
    for v in values:
        r = fn(v)
        if r is not None:
            return r
    return None


def datestamp(msg) -> tuple[int, str] | None:
    """ds: first parsable Date:, else first parsable Received:."""
    return _first(msg.header_raw("date"), parse_date) or _first(msg.header_raw("received"), parse_received)


def timestamp(msg) -> tuple[int, str] | None:
    """ts: first parsable Received:, else first parsable Date:."""
    return _first(msg.header_raw("received"), parse_received) or _first(msg.header_raw("date"), parse_date)
