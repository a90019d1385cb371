"""The RFM segment map (R-F-M code -> named segment) and the A-E grade rule."""

from __future__ import annotations

_SEGMENT_CODES: dict[str, str] = {
    "Champions": "555 554 544 545 454 455 445",
    "Loyal": "543 444 435 355 354 345 344 335",
    "Potential Loyalist": (
        "553 551 552 541 542 533 532 531 452 451 442 441 431 453 433 432 423 353 352 351 "
        "342 341 333 323"
    ),
    "New Customers": "512 511 422 421 412 411 311",
    "Promising": "525 524 523 522 521 515 514 513 425 424 413 414 415 315 314 313",
    "Need Attention": "535 534 443 434 343 334 325 324",
    "About To Sleep": "331 321 312 221 213 231 241 251",
    "At Risk": (
        "255 254 245 244 253 252 243 242 235 234 225 224 153 152 145 143 142 135 134 133 125 124"
    ),
    "Cannot Lose Them": "155 154 144 214 215 115 114 113",
    "Hibernating": "332 322 233 232 223 222 132 123 122 212 211",
    "Lost": "111 112 121 131 141 151",
}

SEGMENTS: tuple[str, ...] = tuple(_SEGMENT_CODES)
"""Segment names, best first (the order reports use)."""

SEGMENT_OF_CODE: dict[str, str] = {
    code: name for name, codes in _SEGMENT_CODES.items() for code in codes.split()
}
"""Every one of the 125 codes "111".."555" maps to exactly one segment (tested)."""

GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")


def rfm_code(r: int, f: int, m: int) -> str:
    """The three-digit code of scores 1..5, e.g. ``"545"``."""
    for name, score in (("recency", r), ("frequency", f), ("monetary", m)):
        if not 1 <= score <= 5:
            raise ValueError(f"{name} score {score} must be between 1 and 5")
    return f"{r}{f}{m}"


def segment_of(r: int, f: int, m: int) -> str:
    """Named segment of an R-F-M score triple."""
    return SEGMENT_OF_CODE[rfm_code(r, f, m)]


def grade_of(total: int) -> str:
    """Grade of the combined score R+F+M: 13-15 A, 10-12 B, 7-9 C, 5-6 D, 3-4 E."""
    if not 3 <= total <= 15:
        raise ValueError(f"combined RFM score {total} must be between 3 and 15")
    if total >= 13:
        return "A"
    if total >= 10:
        return "B"
    if total >= 7:
        return "C"
    if total >= 5:
        return "D"
    return "E"
