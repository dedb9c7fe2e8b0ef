"""Date:/Received: parsing (spec §4.5). Expected values were observed from lei 1.9.0."""
import pytest

from lei_store.mail.dates import datestamp, parse_date, parse_received, timestamp
from lei_store.mail.message import Message

# (Date value, (epoch, zone)) -- None where lei fell back to the import time
LEI_DATES = [
    ("Thu, 05 Jan 2023 08:00:00 +0000", (1672905600, "+0000")),
    ("Tue, 03 Jan 2023 09:59:00 +0100", (1672736340, "+0100")),
    ("Thu, 5 Jan 2023 08:00:00 +0190", (1672896600, "+0230")),  # minutes >= 60 carry
    ("Thu, 5 Jan 2023 08:00:00 +05", (1672905300, "+0005")),  # 2 digits = minutes
    ("Thu, 5 Jan 2023 08:00:00 -5", (1672923600, "-0500")),  # 1 digit = hours
    ("Thu, 5 Jan 2023 08:00:00 +1500", (1672851600, "+0000")),  # zone >= 14h shown as +0000
    ("Mon, 2 Jan 2023 10:00:00 +12345", (1672208100, "+0000")),
    ("Mon, 2 Jan 2023 10:00:00 +-0100", (1672650000, "+0100")),  # first sign wins
    ("Mon, 2 Jan 2023 10:00:00 -0000", (1672653600, "+0000")),
    ("Thu, 5 Jan 23 08:00:00 GMT", (1672905600, "+0000")),
    ("Thu, 5 Jan 99 08:00:00 EST", (915541200, "-0500")),
    ("Thu, 5 Jan 123 08:00:00 +0000", (1672905600, "+0000")),
    ("thu, 5 jan 2023 08:00:00 +0000", (1672905600, "+0000")),
    ("Thu 5 January 2023 08:00:00 +0100 (CET)", (1672902000, "+0100")),
    ("Thu, 05 Jan 2023 08:00 +0100", (1672902000, "+0100")),
    ("Thu, 05 Jan 2023 08.00.00 +0100", (1672902000, "+0100")),
    ("Thu, 05 Jan 2023 8: 5: 7 +0100", (1672902307, "+0100")),
    ("Mon, 2 Jan 2023 10:00:00 UT", (1672653600, "+0000")),
    ("Mon, 2 Jan 2023 10:00:00 Z", (1672653600, "+0000")),
    ("Mon, 2 Jan 2023 10:00:00 est", (1672671600, "-0500")),
    ("Thu, 1 Jan 1970 00:00:00 +0100", (-3600, "+0100")),  # kept: the wall clock is not < 0
    ("Wed, 31 Dec 1969 23:30:00 -0100", None),  # wall clock before 1970: rejected
    ("Wed, 1 Feb 50 10:00:00 +0000", None),  # 1950: rejected, no free-form retry
    ("Fri, 31 Feb 2023 10:00:00 +0000", None),
    # free-form (Date::Parse) fallbacks
    ("2023-01-05 08:00:00 +0000", (1672905600, "+0000")),
    ("Thu Jan  5 08:00:00 2023", (1672905600, "+0000")),
    ("5 Jan 2023", (1672876800, "+0000")),
    ("Thu, 5 Jan 2023 08:00:00 CEST", (1672898400, "+0200")),
    ("Thu, 5 Jan 2023 08:00:00 GMT+0200", (1672898400, "+0200")),
    ("Mon, 2 Jan 2023 10:00 pm +0000", (1672696800, "+0000")),
    ("Monday, 02-Jan-23 10:00:00 GMT", (1672653600, "+0000")),
    ("Mon, 2 Jan 2023 10:00:00", (1672653600, "+0000")),
    ("Mon, 2 Jan 2023 10:00:00 +01:00", (1672650000, "+0100")),
    ("sent on Mon, 2 Jan 2023 10:00:00 +0100 via web", (1672650000, "+0100")),
    ("01/02/2023 10:00:00 +0000", (1672653600, "+0000")),
    ("2 September 2023 10:00 -0700", (1693674000, "-0700")),
    ("Wed 29 May 2019 06:09:22 PM EDT", (1559167762, "-0400")),
    ("Mon, 2 Jan 2023 10:00:00 IST", None),  # zone unknown to Date::Parse
    ("01 Jan 2001 00:01+0000", None),
    ("Thu Jan 01 00:00:10 +0000", None),  # no year
    ("garbage", None),
]


@pytest.mark.parametrize("value,expected", LEI_DATES)
def test_parse_date_matches_lei(value, expected):
    assert parse_date(value) == expected


def test_parse_received():
    v = "from a by b with SMTP id 1; Mon, 2 Jan 2023 10:00:00 -0800 (PST)"
    assert parse_received(v) == (1672682400, "-0800")
    assert parse_received("by x; Mon, 02 Jan 2023 10:00:00.123 +0000") is None  # needs ws before zone
    assert parse_received("from localhost by y") is None


def _msg(hdr: bytes) -> Message:
    return Message(hdr + b"\nbody\n")


def test_datestamp_prefers_date_timestamp_prefers_received():
    m = _msg(b"Received: from a by b; 2 Jan 2023 11:00:00 +0100\n"
             b"Received: from c by d; Mon, 2 Jan 2023 09:00:00 +0000\n"
             b"Date: Mon, 2 Jan 2023 08:00:00 +0000\n")
    assert datestamp(m) == (1672646400, "+0000")
    assert timestamp(m) == (1672653600, "+0100")


def test_first_parsable_value_wins():
    m = _msg(b"Date: garbage\nDate: Thu, 5 Jan 2023 08:00:00 +0000\n")
    assert datestamp(m) == timestamp(m) == (1672905600, "+0000")
    m = _msg(b"Received: by x; Mon, 02 Jan 2023 10:00:00.123 +0000\nReceived: by y; Mon, 2 Jan 2023 10:11:12 +0300\n")
    assert datestamp(m) == timestamp(m) == (1672643472, "+0300")


def test_no_dates():
    m = _msg(b"Subject: x\n")
    assert datestamp(m) is None and timestamp(m) is None
    m = _msg(b"Date: Thu, 5 Jan 1960 08:00:00 +0000\nReceived: from x by y; Fri, 6 Jan 2023 09:00:00 +0000\n")
    assert datestamp(m) == (1672995600, "+0000")  # pre-1970 Date ignored, Received used
