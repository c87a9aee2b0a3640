"""MITRE ATT&CK names for the ids rules carry, offline: every Enterprise tactic and the
techniques the shipped rules use.

The names are MITRE ATT&CK® Enterprise v18 (https://attack.mitre.org/), used under the
ATT&CK Terms of Use (https://attack.mitre.org/resources/legal-and-branding/terms-of-use/),
which license use, reproduction and distribution with this notice and attribution kept:
© The MITRE Corporation. This work is reproduced and distributed with the permission of The
MITRE Corporation.

Why a table and not a package: MITRE's own mitreattack-python reads STIX bundles that you
download, and the packages that bundle the names are young single releases or unmaintained;
the few names this product needs are kept here instead.

An id outside the table (a site rule's, a Sigma rule's) keeps the id as its name: a finding
never carries a made-up name. Add a rule's names with the rule; a test checks that every
shipped rule's ids are here.
"""

from __future__ import annotations

ATTACK_VERSION = "v18"

TACTICS: dict[str, str] = {
    "TA0043": "Reconnaissance",
    "TA0042": "Resource Development",
    "TA0001": "Initial Access",
    "TA0002": "Execution",
    "TA0003": "Persistence",
    "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0007": "Discovery",
    "TA0008": "Lateral Movement",
    "TA0009": "Collection",
    "TA0011": "Command and Control",
    "TA0010": "Exfiltration",
    "TA0040": "Impact",
}

TECHNIQUES: dict[str, str] = {
    "T1059": "Command and Scripting Interpreter",
    "T1059.001": "PowerShell",
    "T1059.003": "Windows Command Shell",
    "T1059.005": "Visual Basic",
    "T1127": "Trusted Developer Utilities Proxy Execution",
    "T1127.001": "MSBuild",
    "T1195": "Supply Chain Compromise",
    "T1195.001": "Compromise Software Dependencies and Development Tools",
    "T1554": "Compromise Host Software Binary",
    "T1612": "Build Image on Host",
}


def tactic_name(uid: str) -> str:
    """The tactic's name, or its id when the table does not know it."""
    return TACTICS.get(uid.upper(), uid)


def technique_name(uid: str) -> str:
    """The technique's (or sub-technique's) name, or its id when the table does not know it."""
    return TECHNIQUES.get(uid.upper(), uid)


def known(uid: str) -> bool:
    key = uid.upper()
    return key in TACTICS or key in TECHNIQUES


def src_url(uid: str) -> str:
    """The id's page on attack.mitre.org (sub-techniques live under their parent)."""
    key = uid.upper()
    if key.startswith("TA"):
        return f"https://attack.mitre.org/tactics/{key}/"
    parent, _, sub = key.partition(".")
    return f"https://attack.mitre.org/techniques/{parent}/" + (f"{sub}/" if sub else "")
