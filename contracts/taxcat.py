"""The tax catalogue (税务 统模式) as data: every exchange, its fields and its three names.

Why data: the tax bureau exchanges some sixty kinds of message (flows F2-F4).
Writing a model, a SOAP codec, an XSD type, a WSDL operation and a core
translation by hand for each would be sixty chances to disagree. Instead each
operation lists its fields, each field is described once (canonical name, tax's
pinyin element, core's national-style name, title, kind), and everything else is
derived: the pydantic model (``model_for``), the SOAP body (``adapters.tax.soap``),
the XSD and WSDL (``contracts.taxcat_xsd``, generated and test-checked), the core
translation (``core_to_canonical``) and the catalogue table (``CATALOGUE.md``).

Kinds of operation:

    submit      hub -> tax, answered by a 受理回执 at once, result by FeedbackNotify (F2)
    push        tax -> hub, answered S once the hub has it safely (F3)
    query       hub -> tax, answered synchronously with records (F4, core asks tax)
    core_query  tax -> hub -> core, answered synchronously with records (F4, tax asks core)

Pure: pydantic only, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, model_validator

from contracts.checks import check_community, check_credit_code, check_division, check_id_number
from contracts.clock import BEIJING
from contracts.employee import CERT_TYPES, check_name, check_stop_date, normalise_cert_type
from contracts.errors import ValidationFailed
from contracts.ids import (
    birth_date_of,
    gender_of,
)

__all__ = [
    "FIELDS",
    "OPS",
    "OPS_BY_TYPE",
    "STORED_ANSWERS",
    "Kind",
    "Op",
    "OpKind",
    "Subject",
    "TaxPayload",
    "WireField",
    "canonical_to_core",
    "core_to_canonical",
    "from_wire",
    "model_for",
    "op",
    "op_for_infno",
    "ops_of",
    "reply_model_for",
    "to_wire",
]

Kind = Literal["uscc", "id", "name", "text", "code", "date", "month", "year", "fen", "int",
               "phone", "division", "community", "certtype", "gender", "idlist", "serial",
               "datetime"]
OpKind = Literal["submit", "push", "query", "core_query"]
Subject = Literal["unit", "employee", "flexible", "resident", "collection", "query"]

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MONTH = re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(19|20)\d{2}$")
_CODE = re.compile(r"^[0-9A-Za-z_]{1,20}$")
_SERIAL = re.compile(r"^[A-Za-z0-9_.:\-]{1,80}$")
_COMMUNITY = re.compile(r"^32\d{10}$")


@dataclass(frozen=True)
class WireField:
    """One field, once: canonical name, tax element, core wire name, title, kind."""

    attr: str
    xml: str
    core: str
    title: str
    kind: Kind
    max_len: int = 60
    choices: tuple[str, ...] = ()


def _f(attr: str, xml: str, core: str, title: str, kind: Kind, max_len: int = 60,
       choices: tuple[str, ...] = ()) -> WireField:
    return WireField(attr, xml, core, title, kind, max_len, choices)


FIELDS: Final[dict[str, WireField]] = {f.attr: f for f in (
    # identities
    _f("unit_credit_code", "shxydm", "uscc", "统一社会信用代码", "uscc"),
    _f("unit_name", "dwmc", "emp_name", "单位名称", "text", 100),
    _f("psn_cert_type", "zjlx", "psn_cert_type", "证件类型", "certtype"),
    _f("id_number", "zjhm", "certno", "证件号码", "id"),
    _f("name", "xm", "psn_name", "姓名", "name"),
    _f("gender", "xb", "gend", "性别", "gender"),
    _f("birth_date", "csrq", "brdy", "出生日期", "date"),
    _f("phone", "lxdh", "tel", "联系电话", "phone"),
    # enrollment
    _f("insutype", "xzlx", "insutype", "险种类型", "code", 3, ("310", "320", "330", "390", "510")),
    _f("psn_type", "rylb", "psn_type", "人员类别", "code", 4),
    _f("start_month", "ksjfny", "begn_ym", "参保开始年月", "month"),
    _f("end_month", "jsjfny", "endn_ym", "参保截止年月", "month"),
    _f("admdvs", "sbjbjgdm", "insu_admdvs", "社保经办机构代码", "division"),
    _f("wage", "jfgz", "wag", "缴费工资(分)", "fen"),
    _f("contribution_base", "jfjs", "clct_base", "缴费基数(分)", "fen"),
    _f("stop_date", "tbrq", "stop_date", "停保日期", "date"),
    _f("reason_code", "tbyy", "stop_rea", "停保原因", "code", 2, ("01", "02", "03", "99")),
    _f("change_date", "bgrq", "chg_date", "变更日期", "date"),
    _f("retire_date", "txrq", "retr_date", "退休日期", "date"),
    _f("back_to_work_date", "fgrq", "rejob_date", "退休转在职日期", "date"),
    _f("unemployment_cert_no", "syzh", "unemp_certno", "失业证号", "text", 40),
    # unit
    _f("legal_rep", "fddbr", "legrep_name", "法定代表人", "name"),
    _f("unit_address", "dwdz", "emp_addr", "单位地址", "text", 200),
    _f("unit_type", "dwlx", "emp_type", "单位类型", "code", 4),
    _f("industry", "hydm", "indu_code", "行业代码", "code", 6),
    _f("pay_action", "jfztbg", "pay_stas_chg", "缴费状态变更", "code", 1, ("1", "2")),
    _f("transfer_mode", "zyms", "trans_mode", "转移模式", "code", 1, ("1", "2", "3")),
    _f("target_unit_credit_code", "zrdwshxydm", "in_uscc", "转入单位统一社会信用代码", "uscc"),
    _f("id_numbers", "zjhmlb", "certno_list", "人员证件号码列表", "idlist"),
    _f("cancel_date", "zxrq", "cncl_date", "注销日期", "date"),
    _f("period_start", "ssqq", "begn_ym_pay", "费款所属期起", "month"),
    _f("period_end", "ssqz", "endn_ym_pay", "费款所属期止", "month"),
    _f("amount", "je", "amt", "金额(分)", "fen"),
    _f("adjust_type", "tzlx", "adj_type", "调整类型", "code", 2),
    # flexible, residents
    _f("household_address", "hjdz", "hsreg_addr", "户籍地址", "text", 200),
    _f("residence_address", "jzdz", "live_addr", "居住地址", "text", 200),
    _f("community", "jcybqh", "grass_admdvs", "基层医保区划", "community"),
    _f("resident_type", "jmlb", "rsdt_psn_type", "居民人员类别", "code", 2,
       ("11", "12", "13", "14", "15", "16")),
    _f("subsidy_type", "bzlb", "subs_type", "补助类别", "code", 2, ("00", "01", "02", "03", "04")),
    _f("insure_year", "cbnd", "insu_year", "参保年度", "year"),
    _f("mother_id_number", "mqzjhm", "mom_certno", "母亲证件号码", "id"),
    _f("birth_order", "tc", "birth_ord", "胎次", "int"),
    _f("confirm_no", "sfqrh", "idet_cfm_no", "身份确认号", "text", 40),
    _f("midyear_flag", "ztcbbz", "midw_insu_flag", "中途参保标志", "code", 1,
       ("1", "2", "3", "4")),
    _f("insure_start_date", "cbksrq", "insu_begn_date", "参保开始日期", "date"),
    _f("insure_date", "cbrq", "insu_date", "参保日期", "date"),
    _f("prenewborn_status", "zxsezt", "prenb_stas", "准新生儿参保状态", "code", 1, ("1", "2")),
    # collection and payment
    _f("bill_no", "jfdjh", "pay_bill_no", "缴费单据号", "text", 40),
    _f("whole_unit", "zyd", "whole_emp_flag", "征一单标志", "code", 1, ("0", "1")),
    _f("collection_no", "zjlsh", "clct_sn", "征集流水号", "text", 40),
    _f("arrival_batch", "dzpc", "arvl_batch", "到账批次号", "text", 40),
    _f("result_code", "cljg", "proc_rslt", "处理结果", "code", 1, ("1", "2")),
    _f("result_text", "cljgsm", "proc_rslt_dscr", "处理结果说明", "text", 200),
    _f("refund_no", "tfbh", "refd_no", "退费编号", "text", 40),
    _f("review_result", "hyjg", "rvw_rslt", "复核核验结果", "code", 1, ("1", "2")),
    _f("review_time", "hysj", "rvw_time", "核验时间(北京时间)", "datetime"),
    _f("write_off_month", "xhny", "wrtoff_ym", "销号年月", "month"),
    _f("payment_mode", "tsjfms", "spec_pay_mode", "特殊缴费模式", "code", 1, ("1", "2", "3")),
    _f("attachment_url", "fjdz", "atch_url", "附件地址", "text", 300),
    _f("abnormal_action", "fczhbz", "abnm_flag", "非正常户认定/解除", "code", 1, ("1", "2")),
    _f("reconcile_date", "dzrq", "recon_date", "对账日期", "date"),
    _f("record_count", "jls", "rec_cnt", "记录数", "int"),
    _f("batch_id", "pch", "batch_no", "批次号", "serial"),
    _f("compare_kind", "bdlx", "cmp_type", "比对类型", "code", 1, ("1", "2", "3")),
    _f("file_path", "wjlj", "file_path", "文件路径", "text", 300),
    # query answers
    _f("arrears", "qfje", "arrs_amt", "欠费金额(分)", "fen"),
    _f("arrears_months", "qfys", "arrs_mons", "欠费月数", "int"),
    _f("paid_amount", "jfje", "paid_amt", "缴费金额(分)", "fen"),
    _f("arrival_date", "dzsj", "arvl_date", "到账日期", "date"),
    _f("status", "zt", "stas", "状态", "code", 2),
    _f("valid", "yxbz", "vali_flag", "有效标志", "code", 1, ("0", "1")),
    _f("package_no", "sjbbh", "data_pkg_no", "数据包编号", "text", 40),
    _f("deduct_date", "kkrq", "dedu_date", "扣款日期", "date"),
)}


@dataclass(frozen=True)
class Op:
    """One tax exchange. ``fields`` and ``reply`` name ``FIELDS``; a ``?`` prefix = optional."""

    name: str
    title: str
    subject: Subject
    kind: OpKind
    fields: tuple[str, ...]
    msg_type: str
    key: tuple[str, ...]
    reply: tuple[str, ...] = ()
    core_infno: str = ""
    doc: str = ""
    required: frozenset[str] = field(default_factory=frozenset)

    @property
    def wire_fields(self) -> tuple[WireField, ...]:
        return tuple(FIELDS[n.lstrip("?")] for n in self.fields)

    @property
    def reply_fields(self) -> tuple[WireField, ...]:
        return tuple(FIELDS[n.lstrip("?")] for n in self.reply)

    @property
    def entity_prefix(self) -> str:
        """Ordering key prefix: per person when the op names one, else per unit, else its key."""
        if "id_number" in self.key:
            return "psn"
        return "unit" if "unit_credit_code" in self.key else self.key[0]

    def business_key(self, payload: Mapping[str, Any]) -> str:
        return ":".join(str(payload.get(k, "")) for k in self.key)

    def entity_value(self, payload: Mapping[str, Any]) -> str:
        """The value ordered on: the same person (or unit) across all of its operations."""
        if "id_number" in self.key:
            return str(payload.get("id_number", ""))
        if "unit_credit_code" in self.key:
            return str(payload.get("unit_credit_code", ""))
        return self.business_key(payload)


def _op(name: str, title: str, subject: Subject, kind: OpKind, fields: str, *,
        key: str = "", reply: str = "", infno: str = "", doc: str = "") -> Op:
    names = tuple(fields.split())
    unknown = [n for n in (*names, *reply.split()) if n.lstrip("?") not in FIELDS]
    if unknown:
        raise ValueError(f"{name}: unknown fields {unknown}")
    key_fields = tuple(key.split()) if key else tuple(
        n for n in ("unit_credit_code", "id_number") if n in names)
    if not key_fields:
        key_fields = tuple(n.lstrip("?") for n in names[:1])
    msg_type = _msg_type(name, subject, kind)
    return Op(name, title, subject, kind, names, msg_type, key_fields,
              tuple(reply.split()), infno, doc,
              frozenset(n for n in names if not n.startswith("?")))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _msg_type(name: str, subject: Subject, kind: OpKind) -> str:
    """``tax.<subject>.<action>`` for submits (``EmployeeEnroll`` -> ``tax.employee.enroll``)."""
    if kind == "submit":
        action = name.removeprefix(subject.capitalize()) or name
        return f"tax.{subject}.{_snake(action)}"
    if kind == "push":
        return f"core.tax_push.{_snake(name.removesuffix('Notify'))}"
    if kind == "query":
        return f"tax.query.{_snake(name.removeprefix('Query'))}"
    return f"core.query.{_snake(name.removeprefix('CoreQuery'))}"


_PERSON = "id_number name"
_EMPLOYEE_ENROLL = ("unit_credit_code unit_name psn_cert_type id_number name gender birth_date "
                    "phone insutype psn_type start_month admdvs wage")
_FLEX = ("psn_cert_type id_number name gender birth_date phone household_address "
         "residence_address community start_month contribution_base")
_RESIDENT = ("psn_cert_type id_number name gender birth_date phone household_address "
             "residence_address community resident_type subsidy_type insure_year")
_FLEX_QUERY = "?psn_cert_type id_number period_start period_end"
_UNIT = ("unit_credit_code unit_name legal_rep unit_address unit_type industry admdvs phone "
         "start_month")

OPS: Final[tuple[Op, ...]] = (
    # ---- F2 unit
    _op("UnitEnroll", "单位参保登记", "unit", "submit", _UNIT, infno="H2001"),
    _op("UnitUpdate", "单位信息维护", "unit", "submit",
        "unit_credit_code unit_name ?legal_rep ?unit_address ?unit_type ?industry ?phone "
        "change_date", infno="H2002"),
    _op("UnitPayStatusChange", "单位缴费状态变更(停保/续保)", "unit", "submit",
        "unit_credit_code unit_name pay_action change_date", infno="H2003",
        doc="pay_action 1 停保, 2 续保"),
    _op("UnitTransfer", "单位参保人员批量转移", "unit", "submit",
        "unit_credit_code transfer_mode target_unit_credit_code ?id_numbers change_date",
        infno="H2004", doc="transfer_mode 1 single, 2 batch (id_numbers), 3 whole unit"),
    _op("UnitCancel", "单位注销", "unit", "submit", "unit_credit_code unit_name cancel_date",
        infno="H2005"),
    _op("UnitBackPayAssess", "单位补收核定", "unit", "submit",
        "unit_credit_code period_start period_end amount", infno="H2006"),
    _op("UnitArrearsWriteOff", "单位欠费核销", "unit", "submit",
        "unit_credit_code period_start period_end amount", infno="H2007"),
    _op("UnitArrearsPay", "单位欠费补缴", "unit", "submit",
        "unit_credit_code period_start period_end amount", infno="H2008"),
    _op("UnitSettlementAdjust", "单位结算调整(特殊缴费)", "unit", "submit",
        "unit_credit_code period_start period_end amount adjust_type", infno="H2009"),
    # ---- F2 employee
    _op("EmployeeEnroll", "职工参保登记", "employee", "submit", _EMPLOYEE_ENROLL, infno="H2101",
        doc="also 暂停缴费撤销 (re-enrollment)"),
    _op("EmployeeUpdate", "职工信息修改", "employee", "submit",
        "unit_credit_code id_number name ?phone ?wage change_date", infno="H2102"),
    _op("EmployeeStop", "职工暂停/终止参保", "employee", "submit",
        "unit_credit_code id_number name stop_date reason_code", infno="H2103",
        doc="reason_code 01 暂停, 02 终止, 03 参保登记撤销"),
    _op("EmployeeRetire", "在职转退休", "employee", "submit",
        "unit_credit_code id_number name retire_date", infno="H2104"),
    _op("EmployeeUnretire", "退休转在职", "employee", "submit",
        "unit_credit_code id_number name back_to_work_date", infno="H2105"),
    _op("EmployeeUnemployedEnroll", "失业代缴医疗参保登记", "employee", "submit",
        "id_number name gender birth_date phone unemployment_cert_no start_month admdvs",
        infno="H2106"),
    # ---- F2 flexible employment
    _op("FlexibleEnroll", "灵活就业参保登记", "flexible", "submit", _FLEX, infno="H2201"),
    _op("FlexibleUpdate", "灵活就业信息修改", "flexible", "submit",
        "id_number name ?phone ?residence_address ?community ?contribution_base change_date",
        infno="H2202"),
    _op("FlexibleSuspend", "灵活就业暂停参保", "flexible", "submit",
        "id_number name stop_date reason_code", infno="H2203"),
    _op("FlexibleTerminate", "灵活就业终止参保", "flexible", "submit",
        "id_number name stop_date reason_code ?confirm_no", infno="H2204",
        doc="tax refuses TX402 when the identity is not unique; confirm first"),
    _op("FlexibleIdentityConfirm", "灵活就业身份确认", "flexible", "submit",
        "id_number name phone confirm_no", infno="H2205",
        doc="the identity-confirmation path after TX402"),
    _op("FlexibleBackPayAssess", "灵活就业补缴核定", "flexible", "submit",
        "id_number name period_start period_end contribution_base", infno="H2206"),
    _op("FlexiblePaymentNotice", "灵活就业缴费通知单", "flexible", "submit",
        "id_number name period_start period_end amount", infno="H2207"),
    # ---- F2 residents
    _op("ResidentEnroll", "城乡居民参保登记", "resident", "submit",
        _RESIDENT + " ?midyear_flag ?insure_start_date", infno="H2301",
        doc="insure_year: next year inside the 集中征缴期, else this year; midyear_flag "
            "(中途参保标志) 1 退役军人, 2 职工中断缴费90天内, 3 刑满释放, 4 毕业后大学生: "
            "covered from insure_start_date (the day of enrollment) to 31 Dec of insure_year"),
    _op("ResidentUpdate", "城乡居民信息修改", "resident", "submit",
        "id_number name ?phone ?residence_address ?community ?subsidy_type change_date",
        infno="H2302"),
    _op("ResidentSuspend", "城乡居民暂停参保", "resident", "submit",
        "id_number name stop_date reason_code", infno="H2303"),
    _op("ResidentTerminate", "城乡居民终止参保", "resident", "submit",
        "id_number name stop_date reason_code", infno="H2304"),
    _op("NewbornEnroll", "新生儿参保登记", "resident", "submit",
        _RESIDENT + " mother_id_number ?birth_order insure_date", infno="H2305",
        doc="within two years of birth; insure_date (参保日期) is the birth date; tax "
            "refuses it while the mother's 准新生儿 (birth_order) is still enrolled"),
    _op("PreNewbornEnroll", "准新生儿参保登记", "resident", "submit",
        "mother_id_number birth_order name community insure_year phone insure_date",
        infno="H2306", key="mother_id_number birth_order",
        doc="insure_date (参保日期) is the day of enrollment"),
    _op("PreNewbornStop", "准新生儿停保(准新生儿转新生儿)", "resident", "submit",
        "mother_id_number birth_order stop_date", infno="H2308",
        key="mother_id_number birth_order",
        doc="新生儿参保登记 stops the mother's 准新生儿 (same 胎次) before enrolling the newborn"),
    _op("ResidentPaymentAssess", "居民缴费核定(特殊缴费)", "resident", "submit",
        "id_number name insure_year amount", infno="H2307"),
    # ---- F2 collection and payment
    _op("PaymentBillCreate", "缴费单据生成(征集, 含征一单)", "collection", "submit",
        "unit_credit_code bill_no period_start period_end amount whole_unit ?id_numbers",
        infno="H2401"),
    _op("PaymentBillCancel", "缴费单据撤销", "collection", "submit",
        "unit_credit_code bill_no", infno="H2402"),
    _op("ResidentCollection", "城乡居民征集信息", "collection", "submit",
        "id_number name collection_no insure_year amount community", infno="H2403"),
    _op("CollectionCancel", "征集信息撤销", "collection", "submit",
        "collection_no ?id_number", key="collection_no", infno="H2404"),
    _op("SpecialPaymentCancel", "特殊缴费撤销", "collection", "submit",
        "bill_no ?unit_credit_code ?id_number", key="bill_no", infno="H2405"),
    _op("ArrivalResultFeedback", "社保费到账处理结果反馈", "collection", "submit",
        "arrival_batch record_count result_code ?result_text", key="arrival_batch",
        infno="H2406"),
    _op("RefundReviewFeedback", "退费复核核验信息反馈", "collection", "submit",
        "refund_no review_result review_time ?result_text", key="refund_no", infno="H2407",
        doc="review_result 1 核验通过, 2 不通过; review_time 核验时间 in Beijing time (seed 2244)"),
    _op("RefundWriteOff", "退费销号信息反馈(按月)", "collection", "submit",
        "write_off_month refund_no amount", key="write_off_month refund_no", infno="H2408"),
    # ---- F3 tax pushes to the hub (delivered to core)
    _op("SpecialPaymentNotify", "特殊缴费业务交互", "collection", "push",
        "payment_mode bill_no ?unit_credit_code ?id_number period_start period_end amount",
        key="bill_no", infno="H3001", doc="payment_mode 1 unit, 2 flexible, 3 resident"),
    _op("RefundAttachmentNotify", "退费申请附送资料", "collection", "push",
        "refund_no ?unit_credit_code ?id_number attachment_url", key="refund_no", infno="H3002"),
    _op("AbnormalUnitNotify", "单位社保费非正常户认定/解除", "unit", "push",
        "unit_credit_code unit_name abnormal_action change_date", infno="H3003"),
    _op("OverdueCollectionCancelNotify", "超期撤销征集流水", "collection", "push",
        "collection_no ?id_number ?unit_credit_code cancel_date", key="collection_no",
        infno="H3004"),
    _op("ReconcileDataNotify", "对账信息", "collection", "push",
        "reconcile_date record_count amount file_path", key="reconcile_date", infno="H3005"),
    _op("CompareBatchNotify", "单位/职工/居民参保信息比对批次", "query", "push",
        "batch_id compare_kind record_count file_path", key="batch_id",
        doc="compare_kind 1 unit, 2 employee, 3 resident; rows in file_path on tax's FTP; "
            "the hub compares with core itself (routes/compare.py)"),
    # ---- F4 core asks tax
    _op("QueryContributionBase", "缴费基数查询", "query", "query", "id_number ?unit_credit_code",
        reply="id_number unit_credit_code contribution_base start_month"),
    _op("QueryPersonArrears", "职工欠费查询", "query", "query", "id_number",
        reply="id_number period_start period_end arrears arrears_months"),
    _op("QueryUnitArrears", "单位欠费查询", "query", "query", "unit_credit_code period_start",
        reply="unit_credit_code period_start period_end arrears arrears_months"),
    _op("QueryPersonArrivals", "参保人员税务到账查询", "query", "query",
        "id_number period_start period_end ?package_no",
        reply="id_number period_start paid_amount arrival_date package_no",
        doc="package_no 数据包编号 narrows the answer to one data package (seed 2475)"),
    _op("QueryUnitSpecialPayment", "单位特殊缴费查询", "query", "query", "unit_credit_code",
        reply="unit_credit_code bill_no amount status"),
    _op("QueryUnitArrivals", "单位缴费到账查询", "query", "query",
        "unit_credit_code period_start period_end",
        reply="unit_credit_code period_start paid_amount arrival_date"),
    _op("QueryPaymentInfo", "单位/职工缴费信息查询", "query", "query",
        "?unit_credit_code ?id_number period_start period_end",
        reply="unit_credit_code id_number period_start paid_amount status insutype",
        doc="one record per month and 险种; status 1 正常 (paid), 2 欠缴, 3 作废/已退; "
            "退休一件事 counts only a paid 310 (职工基本医疗保险) record of the month"),
    _op("QueryUnpaid", "未缴费信息查询", "query", "query", "?unit_credit_code ?id_number",
        reply="unit_credit_code id_number period_start amount"),
    _op("QueryResidentEnrollment", "居民参保登记查询", "query", "query", "id_number",
        reply="id_number name community insure_year status"),
    _op("QueryResidentPayment", "居民缴费查询", "query", "query", "id_number insure_year",
        reply="id_number insure_year paid_amount arrival_date"),
    _op("QueryResidentDeduction", "居民扣款查询", "query", "query", "id_number insure_year",
        reply="id_number insure_year amount status"),
    _op("QuerySpecialPayment", "特殊缴费缴费/扣款查询", "query", "query", "bill_no",
        reply="bill_no amount paid_amount status"),
    _op("QueryCommunity", "基层医保区划有效性查询", "query", "query", "community",
        reply="community valid"),
    _op("QueryPreNewborn", "准新生儿参保信息查询", "query", "query",
        "mother_id_number ?birth_order",
        reply="mother_id_number birth_order insure_year prenewborn_status",
        doc="新生儿参保登记: the mother's 准新生儿 records (all 胎次 unless one is asked); "
            "prenewborn_status 1 enrolled, 2 stopped"),
    _op("QueryPreNewbornPayment", "准新生儿参保缴费查询", "query", "query",
        "mother_id_number birth_order insure_year",
        reply="mother_id_number birth_order insure_year paid_amount status",
        doc="出生一件事: the 准新生儿 enrollment of (mother, 胎次) in insure_year, if any; "
            "status 1 paid (paid_amount > 0), 0 enrolled but unpaid"),
    # ---- F4 tax asks core through the hub
    _op("CoreQueryUnitEnrollment", "单位参保登记查询(税务查核心)", "query", "core_query",
        "unit_credit_code", reply="unit_credit_code unit_name admdvs start_month status",
        infno="H1201"),
    _op("CoreQueryEmployee", "职工参保信息查询(税务查核心)", "query", "core_query",
        "id_number ?unit_credit_code",
        reply="unit_credit_code id_number name start_month wage status", infno="H1202"),
    _op("CoreQueryUnitCollection", "单位征集信息查询(税务查核心)", "query", "core_query",
        "unit_credit_code period_start", reply="unit_credit_code bill_no period_start amount",
        infno="H1203"),
    _op("CoreQueryResidentCollection", "城乡居民征集/特殊缴费/到账信息查询(税务查核心)", "query",
        "core_query", "id_number insure_year",
        reply="id_number collection_no insure_year amount status", infno="H1204"),
    # ---- F4 additions of the seed's query list (003 seed lines 2299-2475)
    _op("QueryUnitEnrollment", "单位参保信息查询", "query", "query", "unit_credit_code",
        reply="unit_credit_code unit_name admdvs start_month status",
        doc="单位基本信息和参保信息 at tax; status 1 正常, 2 停保, 3 注销"),
    _op("QueryFlexibleEnrollment", "灵活就业参保登记/参保信息查询", "query", "query",
        "?psn_cert_type id_number",
        reply="id_number name community start_month contribution_base status",
        doc="status 1 正常, 2 暂停, 3 终止"),
    _op("QueryFlexibleCollection", "灵活就业人员征集信息查询", "query", "query",
        _FLEX_QUERY, reply="id_number collection_no period_start amount status",
        doc="待征集信息 per 费款所属期; status 1 待缴, 2 已缴, 3 已撤销"),
    _op("QueryFlexibleSpecialPayment", "灵活就业人员特殊缴费信息查询", "query", "query",
        _FLEX_QUERY, reply="id_number bill_no period_start insutype amount status",
        doc="险种 310 and 330 only; status 1 open, 2 cancelled"),
    _op("QueryFlexibleArrivals", "灵活就业人员缴费到账信息查询", "query", "query",
        _FLEX_QUERY, reply="id_number period_start insutype paid_amount arrival_date",
        doc="险种 310 and 330 only"),
    _op("QueryFlexibleInTransit", "灵活就业人员在途数据查询", "query", "query",
        _FLEX_QUERY, reply="id_number bill_no period_start amount status",
        doc="在途: notices issued by tax and not yet paid or cancelled; status 1 在途"),
    _op("QueryFlexiblePaymentInfo", "灵活就业人员缴费信息查询", "query", "query",
        _FLEX_QUERY, reply="id_number period_start insutype paid_amount status",
        doc="status 1 正常, 2 欠缴, 3 作废"),
    _op("QueryFlexibleDeduction", "灵活就业人员扣款信息查询", "query", "query",
        _FLEX_QUERY,
        reply="id_number period_start insutype amount deduct_date status result_text",
        doc="answered by the hub from stored return-file records (税务回读信息表: "
            "flex_deduct, special_deduct mode 2); tax is not called. status 1 扣款成功, "
            "0 失败 (result_text 失败原因)"),
    _op("CoreQueryEmployeeArrivals", "职工缴费到账信息查询(税务查核心)", "query",
        "core_query", "id_number period_start period_end ?unit_credit_code",
        reply="unit_credit_code id_number period_start insutype paid_amount arrival_date",
        infno="H1205"),
    _op("CoreQuerySpecialArrivals", "特殊缴费到账信息查询(税务查核心)", "query", "core_query",
        "?unit_credit_code ?id_number period_start period_end",
        reply="bill_no unit_credit_code id_number period_start insutype paid_amount",
        infno="H1206", doc="the 特殊缴费 core took (SpecialPaymentNotify) of a unit or person"),
)

STORED_ANSWERS: Final[dict[str, tuple[str, ...]]] = {
    "QueryFlexibleDeduction": ("flex_deduct", "special_deduct"),
}
"""Queries the hub answers from stored return-file records (``jobs.returnfiles``), by the
return-file kinds read; tax is not asked (seed line 2438: 查询税务回读后的信息表)."""

_BY_NAME: Final = {o.name: o for o in OPS}
OPS_BY_TYPE: Final = {o.msg_type: o for o in OPS}
_BY_INFNO: Final = {o.core_infno: o for o in OPS if o.core_infno}


def op(name: str) -> Op:
    """The operation called ``name``; KeyError names the unknown one."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown tax operation {name!r}") from None


def op_for_infno(infno: str) -> Op | None:
    return _BY_INFNO.get(infno)


def ops_of(kind: OpKind, subject: Subject | None = None) -> tuple[Op, ...]:
    return tuple(o for o in OPS if o.kind == kind and (subject is None or o.subject == subject))


# ---------------------------------------------------------------- field types





def _pattern(regex: re.Pattern[str], what: str) -> Any:
    def check(v: str) -> str:
        v = v.strip()
        if not regex.match(v):
            raise ValueError(f"must be {what}")
        return v
    return check






def _choices(choices: tuple[str, ...]) -> Any:
    def check(v: str) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {v!r}")
        return v
    return check


def _beijing(v: datetime) -> datetime:
    """A time in Beijing time, to the second: without an offset it is read as Beijing's."""
    v = v.replace(tzinfo=BEIJING) if v.tzinfo is None else v.astimezone(BEIJING)
    return v.replace(microsecond=0)


def _idlist(v: list[str]) -> list[str]:
    out = [check_id_number(x) for x in v]
    if len(set(out)) != len(out):
        raise ValueError("contains the same ID number twice")
    return out


def _certtype(v: str) -> str:
    v = normalise_cert_type(v)
    if v not in CERT_TYPES:
        raise ValueError(f"unknown certificate type {v}")
    return v


def _annotation(f: WireField) -> Any:
    """The pydantic type of a field kind; validators raise ValueError with a plain reason."""
    s = str
    if f.choices:
        return Annotated[s, AfterValidator(_choices(f.choices))]
    match f.kind:
        case "uscc":
            return Annotated[s, AfterValidator(check_credit_code)]
        case "id":
            return Annotated[s, AfterValidator(check_id_number)]
        case "name":
            return Annotated[s, AfterValidator(check_name)]
        case "text":
            return Annotated[s, Field(min_length=1, max_length=f.max_len)]
        case "code":
            return Annotated[s, AfterValidator(_pattern(_CODE, "a code of letters and digits"))]
        case "serial":
            return Annotated[s, AfterValidator(_pattern(_SERIAL, "1-80 of A-Z a-z 0-9 _ . : -"))]
        case "date":
            return date
        case "datetime":
            return Annotated[datetime, AfterValidator(_beijing)]
        case "month":
            return Annotated[s, AfterValidator(_pattern(_MONTH, "yyyyMM"))]
        case "year":
            return Annotated[s, AfterValidator(_pattern(_YEAR, "yyyy"))]
        case "fen":
            return Annotated[int, Field(ge=0, le=10**12)]
        case "int":
            return Annotated[int, Field(ge=0, le=10**9)]
        case "phone":
            return Annotated[s, AfterValidator(_pattern(
                _MOBILE, "an 11-digit mainland mobile number starting 13-19"))]
        case "division":
            return Annotated[s, AfterValidator(check_division)]
        case "community":
            return Annotated[s, AfterValidator(check_community)]
        case "certtype":
            return Annotated[s, AfterValidator(_certtype)]
        case "gender":
            return Literal["1", "2"]
        case "idlist":
            return Annotated[list[str], Field(max_length=1000), AfterValidator(_idlist)]
    raise ValueError(f"no type for kind {f.kind}")  # pragma: no cover


class TaxPayload(BaseModel):
    """Base of every generated contract: strict, frozen, cross-field rules of the seed."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _derived(self) -> TaxPayload:
        d = self.__dict__
        id_number = d.get("id_number")
        if id_number and d.get("psn_cert_type", "01") == "01":
            birth = d.get("birth_date")
            if birth is not None and birth_date_of(id_number) != birth:
                raise ValueError(f"birth_date {birth} disagrees with the ID number "
                                 f"({birth_date_of(id_number)})")
            gender = d.get("gender")
            if gender is not None and gender_of(id_number) != gender:
                raise ValueError(f"gender {gender} disagrees with the ID number "
                                 f"({gender_of(id_number)})")
        start, end = d.get("period_start"), d.get("period_end")
        if start and end and start > end:
            raise ValueError(f"period_start {start} is after period_end {end}")
        if d.get("stop_date") is not None:
            check_stop_date(d["stop_date"])
        if d.get("transfer_mode") == "2" and not d.get("id_numbers"):
            raise ValueError("id_numbers is required for transfer_mode 2 (batch)")
        flag, begins = d.get("midyear_flag"), d.get("insure_start_date")
        if (flag is None) != (begins is None):
            raise ValueError("midyear_flag (中途参保标志) and insure_start_date go together")
        if begins is not None and d.get("insure_year") not in (None, str(begins.year)):
            raise ValueError(f"insure_start_date {begins} is not in insure_year "
                             f"{d.get('insure_year')} (a 中途参保 ends on 31 Dec of that year)")
        return self


@cache
def model_for(name: str) -> type[TaxPayload]:
    """The pydantic contract of an operation's request (fields in wire order)."""
    o = op(name)
    definitions: dict[str, Any] = {}
    for raw in o.fields:
        f = FIELDS[raw.lstrip("?")]
        ann = _annotation(f)
        definitions[f.attr] = ((ann, Field(description=f.title)) if not raw.startswith("?")
                               else (ann | None, Field(default=None, description=f.title)))
    model: type[TaxPayload] = create_model(f"{name}Payload", __base__=TaxPayload,
                                           __doc__=f"{o.title} ({name})", **definitions)
    return model


@cache
def reply_model_for(name: str) -> type[BaseModel]:
    """One record of a query's answer; every field optional (answers vary by case)."""
    o = op(name)
    definitions: dict[str, Any] = {
        f.attr: (str | None, Field(default=None, description=f.title)) for f in o.reply_fields}
    model: type[BaseModel] = create_model(
        f"{name}Record", __config__=ConfigDict(frozen=True, extra="forbid"), **definitions)
    return model


# ---------------------------------------------------------------- wire conversion

def _wire_value(value: Any) -> str | list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_wire(o: Op, payload: BaseModel | Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Canonical payload -> tax element values, in wire order; absent optionals are omitted."""
    data = payload.__dict__ if isinstance(payload, BaseModel) else payload
    out: dict[str, str | list[str]] = {}
    for f in o.wire_fields:
        value = data.get(f.attr)
        if value is not None:
            out[f.xml] = _wire_value(value)
    return out


def from_wire(o: Op, values: Mapping[str, Any], *, reply: bool = False) -> dict[str, Any]:
    """Tax element values -> canonical names (unknown elements are dropped by the caller)."""
    fields = o.reply_fields if reply else o.wire_fields
    return {f.attr: values[f.xml] for f in fields if f.xml in values}


def core_to_canonical(o: Op, data: Mapping[str, Any]) -> dict[str, Any]:
    """Core's national-style names -> canonical names; an unknown name is an error, not dropped."""
    by_core = {f.core: f.attr for f in o.wire_fields}
    unknown = sorted(k for k in data if k not in by_core and k != "seq")
    if unknown:
        raise ValidationFailed([(k, f"unknown field for {o.name}") for k in unknown],
                               partner="core")
    return {by_core[k]: v for k, v in data.items() if k in by_core}


def canonical_to_core(fields: tuple[WireField, ...],
                      data: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical names -> core's names (for answers core reads)."""
    return {f.core: _wire_value(data[f.attr]) for f in fields if data.get(f.attr) is not None}
