"""Per-trust settings: a typed model loaded from YAML in the trusts folder."""
from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from cstf.paths import read_yaml


class InboundSettings(BaseModel):
    """Choices for checks the ESR spec marks as inferred."""
    model_config = ConfigDict(extra="forbid")
    trailer_check: Literal["reject", "warn"] = Field(
        "reject", description="TRL count differs from the records found: refuse the file, or only warn")
    max_quarantine_share: float = Field(
        0.05, ge=0, le=1, description="refuse a file when more than this share of its lines are malformed")
    quarantine_floor: int = Field(
        10, ge=0, description="...and only when more than this many lines are bad, so a tiny delta is not refused for two lines")
    max_invalid_share: float = Field(
        0.05, ge=0, le=1, description="fail validation when more than this share of rows break a quarantining rule")
    retention_days: int = Field(
        90, ge=1, description="keep staged file tables, quarantined lines, old current-state versions, snapshots, "
                              "plans and plan CSVs this many days; the daily cstf_maintenance DAG purges older ones")
    state_detail_days: int = Field(
        400, ge=30, description="keep the state DB's plan detail (planned actions, their outcomes, plan headers) of "
                                "runs this many days; cstf_maintenance deletes older runs' detail (audit events, "
                                "files, the outbound ledger and done evidence actions are kept). Outbound echo "
                                "suppression reads the done marks of recent runs, hence at least 30")
    lock_stale_hours: float = Field(
        24, gt=0, description="one run of esr_inbound at a time per trust: a run waits while another holds the trust; "
                              "a hold its run stopped refreshing for this long is taken over (a killed run)")
    stale_after_days: int = Field(
        3, ge=0, description="warn (task log and run report) that the ESR feed is stale when no GO file dated after "
                             "the last one has come for this many days up to the run date; 0 turns the check off")


# --- Users: planner rules (spec esr-interface §4, §5.1-§5.6; totara-api §5, §12) -------------

# Where an owned Totara field can come from in ESR. "status" is derived (Applicant/Employee/Leaver);
# "start_date" is the hire date for employees, the projected hire date for applicants.
UserSource = Literal[
    "first_name", "last_name", "middle_names", "preferred_name", "email", "employee_number",
    "person_id", "assignment_number", "organisation_name", "position_name", "job_name", "grade", "assignment_category",
    "status", "hire_date", "start_date", "date_of_birth",
]
# Core Totara user fields the interface may own (identity and account state have their own policy).
OWNABLE_CORE_FIELDS = frozenset({
    "firstname", "lastname", "middlename", "alternatename", "email", "department", "institution",
    "city", "phone1", "phone2", "address", "firstnamephonetic", "lastnamephonetic",
})
DATE_SOURCES = frozenset({"hire_date", "start_date", "date_of_birth"})
TEMPLATE_FIELDS = frozenset({"person_id", "employee_number", "vpd"})


def _check_template(v: str) -> str:
    import string
    for _literal, name, spec, conv in string.Formatter().parse(v):
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conv:
            raise ValueError(f"template {v!r}: only {{person_id}}, {{employee_number}} and {{vpd}} may be used")
    return v


class ApplicantStatus(BaseModel):
    """One allow-list entry: (assignment type, system status, user status or "*")."""
    model_config = ConfigDict(extra="forbid")
    assignment_type: str = "A"
    system_status: str
    user_status: str = Field("*", description='the trust\'s user status string, or "*" for any')


class UserSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    eligible_applicant_statuses: list[ApplicantStatus] = Field(
        default_factory=lambda: [ApplicantStatus(system_status="OFFER"), ApplicantStatus(system_status="ACCEPTED")],
        description="applicant assignments that earn a temporary account (spec §5.3)")
    employee_person_types: list[str] = Field(
        ["EMP", "EMP_APL"], description="ESR system person types with an employee account (once hired)")
    applicant_person_types: list[str] = Field(
        ["APL", "EX_EMP_APL"], description="person types that follow the applicant rules; a returning leaver keeps "
                                           "the same account")
    leaver_person_types: list[str] = Field(
        ["EX_EMP"], description="person types shown as Leaver; only a person-level termination date ever suspends")
    ex_applicant_person_types: list[str] = Field(["EX_APL"], description="person types of an ended application")
    ended_application_statuses: list[str] = Field(
        ["TERM_APL"], description="system statuses of an applicant assignment whose application has ended")
    suspend_on_termination: bool = Field(
        True, description="suspend a leaver's account once the run date is past the later of the termination date "
                          "and the primary assignment's last working day, plus the grace days")
    termination_grace_days: int = Field(0, ge=0, description="days after termination before a leaver is suspended")
    suspend_ended_applications: bool = Field(
        True, description="suspend (never delete) the account of an applicant whose application ended")
    ended_application_grace_days: int = Field(
        0, ge=0, description="days after an application ended before its account is suspended")
    unsuspend_on_reversal: bool = Field(
        True, description="unsuspend on a reversed termination or a reopened application (rehires always are)")
    # Ownership: fields not listed are never touched (coexistence with HR Import, spec §12).
    owned_fields: dict[str, UserSource] = Field(
        default_factory=lambda: {"firstname": "first_name", "lastname": "last_name",
                                 "middlename": "middle_names", "email": "email"},
        description="Totara user fields this interface owns, each with its ESR source; fields not listed are never "
                    "touched (HR Import may own them)")
    owned_custom_fields: dict[str, UserSource] = Field(
        default_factory=lambda: {"esr_employee_number": "employee_number",
                                 "esrassignmentnumber": "assignment_number", "esrstatus": "status"},
        description="Totara custom profile fields (shortname) this interface owns, each with its ESR source")
    share_date_of_birth: bool = Field(False, description="must be true before any field may come from date_of_birth")
    status_labels: dict[Literal["applicant", "employee", "leaver"], str] = Field(
        default_factory=lambda: {"applicant": "Applicant", "employee": "Employee", "leaver": "Leaver"},
        description="what the status source writes for applicants, employees and leavers (options of the menu field)")
    person_id_field: str = Field("esr_person_id", description="custom field of the ESR person id: set on creation, "
                                                             "never changed")
    vpd_field: str = Field("esr_vpd", description="custom field of the trust's VPD: set on creation, never changed")
    applicant_username: str = Field("apl-{person_id}", description="username of a temporary (applicant) account")
    applicant_idnumber: str = Field("APL-{person_id}", description="idnumber of a temporary (applicant) account")
    employee_username: str = Field("{employee_number}", description="username once hired (changes once, at hire)")
    employee_idnumber: str = Field("{employee_number}", description="idnumber once hired (changes once, at hire)")
    missing_email: Literal["placeholder", "skip"] = Field(
        "placeholder", description="no usable e-mail when an account is created: use the placeholder, or skip the "
                                   "account (recorded)")
    missing_email_template: str = Field("{person_id}@applicant.invalid", description="the placeholder e-mail address")
    applicant_auth: str = Field("manual", description="authentication method of applicant accounts")
    employee_auth: str = Field("manual", description="authentication method of employee accounts (an SSO plugin is "
                                                      "refused by Totara 17.3's API)")

    _tpl = field_validator("applicant_username", "applicant_idnumber", "employee_username",
                           "employee_idnumber", "missing_email_template")(lambda cls, v: _check_template(v))

    @model_validator(mode="after")
    def _ownership(self) -> "UserSettings":
        bad = sorted(set(self.owned_fields) - OWNABLE_CORE_FIELDS)
        if bad:
            raise ValueError(f"owned_fields: {bad} cannot be owned (allowed: {sorted(OWNABLE_CORE_FIELDS)}); "
                             "username, idnumber, auth and suspended follow the identity policy")
        identity = {self.person_id_field, self.vpd_field} & set(self.owned_custom_fields)
        if identity:
            raise ValueError(f"owned_custom_fields: {sorted(identity)} are identity fields, set on creation only")
        dated = [k for k, v in self.owned_fields.items() if v in DATE_SOURCES]
        if dated:
            raise ValueError(f"owned_fields: {dated} take a date; map dates to date custom fields only")
        dob = [k for k, v in self.owned_custom_fields.items() if v == "date_of_birth"]
        if dob and not self.share_date_of_birth:
            raise ValueError(f"owned_custom_fields: {dob} come from date_of_birth, which needs share_date_of_birth: true")
        return self


class SafeguardSettings(BaseModel):
    """Mass-change guard (spec §7.4): destructive actions over a threshold are held for approval."""
    model_config = ConfigDict(extra="forbid")
    max_suspensions: int = Field(50, ge=0, description="hold when a run would suspend more accounts than this")
    max_suspension_share: float = Field(0.02, ge=0, le=1, description="... or more than this share of active accounts")
    min_full_file_share: float = Field(0.9, ge=0, le=1,
                                       description="hold when a full file has fewer persons than this share of the previous one")


# --- Competences: inbound achievement rules (spec esr-interface §5.7-§5.10; totara-api §8-§10) ----

class IatSettings(BaseModel):
    """Acceptance of achievements transferred from another trust (IAT, spec §5.9); off by default."""
    model_config = ConfigDict(extra="forbid")
    accept: Literal["any", "allowlist", "none"] = Field(
        "any", description="any source VPD, only allowed_vpds, or no IAT achievements at all")
    allowed_vpds: list[str] = Field(default_factory=list, description="source VPDs accepted under 'allowlist'")
    max_age_days: int | None = Field(None, ge=0, description="refuse IAT achievements older than this many days")


class EvidenceFieldNames(BaseModel):
    """Shortnames of the evidence type's custom fields (totara-api §9, §10.3)."""
    model_config = ConfigDict(extra="forbid")
    competence_id: str = Field("competence_id", description="evidence field of the ESR competence id")
    competence_name: str = Field("competence_name", description="evidence field of the competence name")
    achieved: str = Field("achieved", description="evidence field of the date achieved")
    expires: str = Field("expires", description="evidence field of the expiry date")
    source_vpd: str = Field("source_vpd", description="evidence field of the VPD the achievement came from")


class CompetenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evidence_type: str = Field("esr-competence", description="idnumber of the evidence bank type for unmapped achievements")
    evidence_fields: EvidenceFieldNames = Field(default_factory=EvidenceFieldNames,
                                                description="shortnames of the evidence type's custom fields")
    iat: IatSettings = Field(default_factory=IatSettings, description="achievements transferred from another trust")
    send_older_to_history: bool = Field(
        True, description="send achievements older than Totara's current completion (they land in history)")
    include_requirement_rows: bool = Field(
        False, description="record non-PERSONAL (requirement) CMA rows as skip actions; otherwise only counted")


class TransportSettings(BaseModel):
    """ESR FTPS transport (spec §7.1, §2.6): which Airflow Connection and folders this trust uses."""
    model_config = ConfigDict(extra="forbid")
    esr_ftps_conn_id: str | None = Field(
        None, description="Airflow Connection of the trust's ESR FTPS account; unset: esr_ftps_default if it "
                          "exists, else no transport (files are read from the local landing folder)")
    out_dir: str | None = Field(None, description="ESR's outgoing folder on the server; unset: the Connection's out_dir extra, else Out")
    in_dir: str | None = Field(None, description="ESR's incoming folder on the server; unset: the Connection's in_dir extra, else In")
    request_full_extract_on: list[Literal["gap", "no_full_file"]] = Field(
        default_factory=lambda: ["gap"],
        description="holds that upload a full-extract request (GDR) to In/, once per hold (spec §7.3)")


class OutboundSettings(BaseModel):
    """Totara to ESR (spec §8): where the first esr_outbound run of a trust starts reading completions."""
    model_config = ConfigDict(extra="forbid")
    go_live_date: date | None = Field(
        None, description="YYYY-MM-DD: the first outbound run of the trust (no earlier file or run) reads certification "
                          "completions changed since this date, so completions made in Totara before the interface's "
                          "first run are sent too; unset: the first run reads its own day only, with a warning")


class JobSettings(BaseModel):
    """Job assignments, positions and organisations from ESR (issue 16): Totara uses them for audiences, certification
    assignment by role, manager reports and approvals. Keyed on ESR ids, never on names."""
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(False, description="plan and apply job assignments (the site's local_esrsync must have the "
                                             "job operations, release 1.2)")
    assignments: Literal["all_current", "primary_only"] = Field(
        "all_current", description="which current ESR employee assignments get a Totara job assignment")
    hierarchy: Literal["sync", "match"] = Field(
        "sync", description="sync: positions and organisations from POA and ORA are created or updated in Totara's "
                            "frameworks by ESR id (never deleted); match: the trust manages them in Totara, matched by "
                            "idnumber, and a missing one is reported")
    position_framework: str = Field("ESR-{vpd}-POS", description="idnumber of the position framework ({vpd} allowed)")
    organisation_framework: str = Field("ESR-{vpd}-ORG", description="idnumber of the organisation framework")
    end_on_termination: bool = Field(True, description="a leaver's job assignments get the termination date as end date")
    max_end_share: float = Field(
        0.05, ge=0, le=1, description="hold the day's job assignment ends for approval when they exceed this share of "
                                      "the trust's job assignments (and max_end_floor)")
    max_end_floor: int = Field(20, ge=0, description="...and only when more than this many end on one day")


class TrustSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vpd: str = Field(..., description="the trust's 3-character ESR VPD code")
    name: str = Field("", description="the trust's name as people know it")
    totara_conn_id: str = Field("totara_default", description="Airflow Connection of the trust's Totara site (the "
                                                              "credentials stay in the Connection)")
    inbound: InboundSettings = InboundSettings()
    users: UserSettings = Field(default_factory=UserSettings)
    safeguards: SafeguardSettings = Field(default_factory=SafeguardSettings)
    competences: CompetenceSettings = Field(default_factory=CompetenceSettings)
    transport: TransportSettings = Field(default_factory=TransportSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    # The file the settings were loaded from (load_trust); not a setting, never in model_dump.
    _source: Path | None = PrivateAttr(None)

    @property
    def source_path(self) -> Path | None:
        return self._source

    def __eq__(self, other: object) -> bool:  # equal settings are equal wherever they were read from
        return type(other) is type(self) and self.__dict__ == other.__dict__

    @field_validator("vpd")
    @classmethod
    def _vpd_shape(cls, v: str) -> str:
        if len(v) != 3 or not v.isalnum() or v != v.upper():
            raise ValueError("VPD must be 3 upper-case letters or digits, e.g. '999'")
        return v


class TrustConfigError(Exception):
    pass


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {len(err.errors())} problem(s)"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def load_trust(path: str | Path) -> TrustSettings:
    path = Path(path)
    try:
        doc = read_yaml(path) or {}
    except yaml.YAMLError as exc:
        raise TrustConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        trust = TrustSettings.model_validate(doc)
    except ValidationError as exc:
        raise TrustConfigError(_format_errors(path, exc)) from None
    trust._source = path
    return trust


def trust_files(folder: str | Path) -> list[Path]:
    """Trust settings files: <folder>/*.yaml, except mapping files (*.mappings.yaml)."""
    return sorted(p for p in Path(folder).glob("*.yaml") if not p.name.endswith(".mappings.yaml"))


def load_trusts(folder: str | Path) -> dict[str, TrustSettings]:
    trusts: dict[str, TrustSettings] = {}
    for path in trust_files(folder):
        t = load_trust(path)
        if t.vpd in trusts:
            raise TrustConfigError(f"{path}: VPD {t.vpd} is configured twice")
        trusts[t.vpd] = t
    if not trusts:
        raise TrustConfigError(f"{folder}: no trust settings files (*.yaml)")
    return trusts
