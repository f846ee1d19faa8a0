"""JUnit XML of an evaluation, so CI systems show each criterion as a test case.

A failed gating row is a ``<failure>``; a failed secondary criterion and an inconclusive row are
``<skipped>`` with the reason (CI shows them without failing the build).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mlhandoff.evaluate.report import AcceptanceReport


def _value(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.6g}"


def junit_xml(report: AcceptanceReport, suite: str = "mlhandoff.acceptance") -> str:
    failures = len(report.failed())
    skipped = sum(1 for r in report.rows if r.verdict != "pass" and r not in report.failed())
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(report.rows)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    for row in report.rows:
        case = ET.SubElement(
            root, "testcase", classname=f"{suite}.{row.kind}", name=f"{row.label} {row.bound}"
        )
        interval = "" if row.low is None else f" [{_value(row.low)}, {_value(row.high)}]"
        text = f"{row.label} = {_value(row.value)}{interval}, required {row.bound}: {row.reason}"
        if row.verdict == "fail" and row.gating:
            ET.SubElement(case, "failure", message=text, type="AcceptanceFailure").text = text
        elif row.verdict != "pass":
            ET.SubElement(case, "skipped", message=f"{row.verdict}: {text}")
        ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
