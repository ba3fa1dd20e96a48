//! `list_info` for every list call: paging (`row_count` ≤ 100, default 10, 1-based `start_index`
//! where 0 reads as 1, `has_more_rows`, `total_count`), `search_criteria`, `search_fields`,
//! sorting, `fields_required` (top level always, inside `list_info` only where [`ListRules`] say).
//!
//! Criteria are evaluated against the full rendered rows, so any dotted path works
//! (`status.name`, `requester.email_id`, `udf_fields.udf_sline_301`). A path ending on a date or
//! `display_id` object compares its `value`; ending on a lookup/user object, its `name`; a `null`
//! is never greater, lesser or between anything (a request never edited has no
//! `last_updated_time`, so no cursor on it finds that request). Elements fold left to right: each
//! element's `logical_operator` (default AND) joins it to what came before; `children` fold onto
//! their parent the same way. No operator precedence ([U]). A criterion takes at most 100 `values`
//! ([U]); where [`ListRules::mixed_date_criteria`] is off, criteria on a date field (`*_time`) may
//! not be combined with any other criterion (400, as one on-prem instance).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::wire::{self, SdpError};

const LIST_INFO_KEYS: &[&str] = &[
    "row_count",
    "start_index",
    "page",
    "sort_field",
    "sort_order",
    "sort_fields",
    "get_total_count",
    "search_criteria",
    "search_fields",
    "filter_by",
    "fields_required",
];

/// Most operands one criterion takes (`"values": [..]`).
const MAX_VALUES: usize = 100;

const CRITERION_KEYS: &[&str] = &[
    "field",
    "condition",
    "value",
    "values",
    "logical_operator",
    "children",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cond {
    Is,
    IsNot,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    NotBetween,
    StartsWith,
    EndsWith,
    Contains,
    NotContains,
}

fn condition(text: &str) -> Option<Cond> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "is" | "=" | "eq" => Cond::Is,
        "is not" | "!=" | "neq" => Cond::IsNot,
        "greater than" | "gt" => Cond::Gt,
        "greater or equal" | "gte" => Cond::Gte,
        "lesser than" | "lt" => Cond::Lt,
        "lesser or equal" | "lte" => Cond::Lte,
        "between" => Cond::Between,
        "not between" => Cond::NotBetween,
        "starts with" => Cond::StartsWith,
        "ends with" => Cond::EndsWith,
        "contains" => Cond::Contains,
        "not contains" => Cond::NotContains,
        _ => return None,
    })
}

/// How an instance reads `list_info`: from its settings, per profile.
pub(crate) struct ListRules {
    pub default_row_count: usize,
    /// Cloud reads `fields_required` inside `list_info` too; on-prem only at the top level.
    pub fields_required_in_list_info: bool,
    /// Whether a date criterion may be combined with others in one `search_criteria`.
    pub mixed_date_criteria: bool,
}

/// A parsed `list_info`.
pub(crate) struct ListParams {
    row_count: usize,
    start_index: usize,
    sort: Vec<(String, bool)>,
    total: bool,
    criteria: Vec<Value>,
    search_fields: Vec<(String, Value)>,
    fields_required: Option<Vec<String>>,
    echo: Map<String, Value>,
}

impl ListParams {
    /// Parses `input_data` of a list call. `known` are the row's top-level keys that criteria and
    /// sorting may name (empty: anything); `default_sort` is `(field, ascending)`, `None` keeps the
    /// stored order.
    pub(crate) fn parse(
        input: Option<&Value>,
        rules: &ListRules,
        known: &[&str],
        default_sort: Option<(&str, bool)>,
    ) -> Result<ListParams, SdpError> {
        let empty = Map::new();
        let top = match input {
            None => &empty,
            Some(v) => v
                .as_object()
                .ok_or_else(|| SdpError::bad_input("input_data must be a JSON object"))?,
        };
        if let Some(extra) = top
            .keys()
            .find(|k| *k != "list_info" && *k != "fields_required")
        {
            return Err(SdpError::extra_key(extra));
        }
        let info = match top.get("list_info") {
            None => &empty,
            Some(v) => v
                .as_object()
                .ok_or_else(|| SdpError::type_mismatch("list_info"))?,
        };
        if let Some(extra) = info.keys().find(|k| !LIST_INFO_KEYS.contains(&k.as_str())) {
            return Err(SdpError::extra_key(extra));
        }
        let row_count =
            count(info.get("row_count"), "row_count")?.unwrap_or(rules.default_row_count);
        if row_count == 0 || row_count > 100 {
            return Err(SdpError::invalid_value("row_count")
                .with_message("row_count must be between 1 and 100"));
        }
        // `start_index: 0` is accepted by a live instance (§13.13); it reads as the first row.
        let start_index = match (
            count(info.get("start_index"), "start_index")?,
            count(info.get("page"), "page")?,
        ) {
            (Some(start), _) => start.max(1),
            (None, Some(page)) => (page.max(1) - 1) * row_count + 1,
            (None, None) => 1,
        };
        let sort = parse_sort(info, known, default_sort)?;
        let criteria = parse_criteria(info.get("search_criteria"), rules, known)?;
        let mut search_fields = Vec::new();
        if let Some(fields) = info.get("search_fields") {
            let fields = fields
                .as_object()
                .ok_or_else(|| SdpError::type_mismatch("search_fields"))?;
            for (k, v) in fields {
                search_fields.push((checked_field(k, known)?, v.clone()));
            }
        }
        // On-prem reads it only at the top level; inside `list_info` it is ignored (§13.9).
        let inside = info
            .get("fields_required")
            .filter(|_| rules.fields_required_in_list_info);
        let fields_required = top
            .get("fields_required")
            .or(inside)
            .map(field_names)
            .transpose()?;
        let total = match info.get("get_total_count") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(text)) if text == "true" || text == "false" => text == "true",
            Some(_) => return Err(SdpError::type_mismatch("get_total_count")),
        };
        let mut echo = info.clone();
        if echo.contains_key("get_total_count") {
            // A live instance echoes it as a string (§13.13).
            echo.insert("get_total_count".into(), json!(total.to_string()));
        }
        Ok(ListParams {
            row_count,
            start_index,
            sort,
            total,
            criteria,
            search_fields,
            fields_required,
            echo,
        })
    }

    /// Filters, sorts and pages `rows` and projects the page's rows (`fields_required`, else the
    /// `abbreviated` keys, else everything); returns the page and the response `list_info`.
    pub(crate) fn apply(
        &self,
        rows: Vec<Value>,
        abbreviated: Option<&[&str]>,
    ) -> (Vec<Value>, Value) {
        let order = self.order(&rows);
        let mut rows: Vec<Option<Value>> = rows.into_iter().map(Some).collect();
        self.page(
            &order,
            |&i| rows[i].take().expect("a row is on one page once"),
            abbreviated,
        )
    }

    /// What decides which rows match and in which order (not which page): the same key on the
    /// same rows gives the same [`ListParams::order`].
    pub(crate) fn selection_key(&self) -> String {
        json!([self.sort, self.criteria, self.search_fields]).to_string()
    }

    /// The top-level keys of a row that matching and ordering read (criteria, `search_fields`,
    /// sort fields, and `id`): rows holding only these keys select exactly as full rows do.
    pub(crate) fn selection_keys(&self) -> Vec<String> {
        let mut paths: Vec<&str> = vec!["id"];
        paths.extend(self.sort.iter().map(|(field, _)| field.as_str()));
        paths.extend(self.search_fields.iter().map(|(field, _)| field.as_str()));
        for c in &self.criteria {
            criterion_fields(c, &mut paths);
        }
        let mut keys: Vec<String> = Vec::new();
        for path in paths {
            let head = path.split('.').next().unwrap_or_default();
            if !keys.iter().any(|k| k == head) {
                keys.push(head.to_owned());
            }
        }
        keys
    }

    /// The positions in `rows` of the rows that match, in the answer's order: sorted by the sort
    /// fields, then by `id`; rows that compare equal keep their order.
    pub(crate) fn order(&self, rows: &[Value]) -> Vec<usize> {
        self.sorted(rows, (0..rows.len()).filter(|&i| self.matches(&rows[i])))
    }

    /// Every position in `rows`, matching or not, in the answer's order.
    pub(crate) fn order_all(&self, rows: &[Value]) -> Vec<usize> {
        self.sorted(rows, 0..rows.len())
    }

    /// What decides the order alone (not which rows match).
    pub(crate) fn sort_key(&self) -> String {
        json!(self.sort).to_string()
    }

    /// The date field this selection both sorts by and bounds with one greater/lesser criterion,
    /// and nothing else. Then the rows that match are one unbroken run of
    /// [`ListParams::order_all`] (rows without a value sort to one end and never match), which
    /// [`ListParams::matching_run`] finds by bisection.
    pub(crate) fn range_on_sort_field(&self) -> Option<&str> {
        let [(field, _)] = self.sort.as_slice() else {
            return None;
        };
        let [criterion] = self.criteria.as_slice() else {
            return None;
        };
        let ranged = criterion.get("children").is_none()
            && criterion.get("field").and_then(Value::as_str) == Some(field.as_str())
            && criterion
                .get("condition")
                .and_then(Value::as_str)
                .and_then(condition)
                .is_some_and(|c| matches!(c, Cond::Gt | Cond::Gte | Cond::Lt | Cond::Lte));
        (ranged && self.search_fields.is_empty() && is_date_field(field) && !field.contains('.'))
            .then_some(field.as_str())
    }

    /// For a selection with [`ListParams::range_on_sort_field`]: the run of `sorted` (rows in
    /// [`ListParams::order_all`]'s order) that matches.
    pub(crate) fn matching_run(&self, sorted: &[Value]) -> std::ops::Range<usize> {
        let Some(field) = self.range_on_sort_field() else {
            return 0..0;
        };
        let ascending = self.sort[0].1;
        // Rows without a value sort first ascending, last descending.
        let valued = |row: &Value| first_operand(row, field).is_some();
        let (lo, hi) = if ascending {
            (sorted.partition_point(|r| !valued(r)), sorted.len())
        } else {
            (0, sorted.partition_point(valued))
        };
        let run = &sorted[lo..hi];
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return 0..0;
        };
        // Along one field in order, a bound holds on a prefix or on a suffix of the run.
        match (self.matches(first), self.matches(last)) {
            (true, true) => lo..hi,
            (false, false) => 0..0,
            (true, false) => lo..lo + run.partition_point(|r| self.matches(r)),
            (false, true) => lo + run.partition_point(|r| !self.matches(r))..hi,
        }
    }

    fn sorted(&self, rows: &[Value], matching: impl Iterator<Item = usize>) -> Vec<usize> {
        if self.sort.is_empty() {
            return matching.collect();
        }
        // Each row's sort keys are read once, not at every comparison.
        let mut keyed: Vec<(usize, Vec<Option<String>>)> = matching
            .map(|i| {
                let keys = self
                    .sort
                    .iter()
                    .map(|(field, _)| first_operand(&rows[i], field))
                    .collect();
                (i, keys)
            })
            .collect();
        keyed.sort_by(|(a, a_keys), (b, b_keys)| {
            for ((_, asc), (x, y)) in self.sort.iter().zip(a_keys.iter().zip(b_keys)) {
                let ord = compare_keys(x.as_deref(), y.as_deref());
                let ord = if *asc { ord } else { ord.reverse() };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            compare_keys(rows[*a]["id"].as_str(), rows[*b]["id"].as_str())
        });
        keyed.into_iter().map(|(i, _)| i).collect()
    }

    /// The page of `order` (everything that matched, in the answer's order) and the response
    /// `list_info`; `row` renders an item of `order`, and is asked only for the page's items.
    pub(crate) fn page<T>(
        &self,
        order: &[T],
        mut row: impl FnMut(&T) -> Value,
        abbreviated: Option<&[&str]>,
    ) -> (Vec<Value>, Value) {
        let total = order.len();
        let skip = self.start_index - 1;
        let page: Vec<Value> = order
            .iter()
            .skip(skip)
            .take(self.row_count)
            .map(|item| self.project(row(item), abbreviated))
            .collect();
        let mut info = self.echo.clone();
        info.remove("fields_required");
        info.insert(
            "has_more_rows".into(),
            Value::Bool(skip + self.row_count < total),
        );
        info.insert("start_index".into(), self.start_index.into());
        info.insert("row_count".into(), page.len().into());
        info.insert("page".into(), (skip / self.row_count + 1).into());
        if self.total {
            info.insert("total_count".into(), total.into());
        }
        (page, Value::Object(info))
    }

    fn matches(&self, row: &Value) -> bool {
        let fields_ok = self
            .search_fields
            .iter()
            .all(|(field, value)| test(row, field, Cond::Is, std::slice::from_ref(value)));
        fields_ok && fold(row, None, &self.criteria)
    }

    fn project(&self, row: Value, abbreviated: Option<&[&str]>) -> Value {
        let Value::Object(map) = row else { return row };
        let keep = |k: &str| match (&self.fields_required, abbreviated) {
            (Some(names), _) => k == "id" || names.iter().any(|n| n.split('.').next() == Some(k)),
            (None, Some(short)) => short.contains(&k),
            (None, None) => true,
        };
        Value::Object(map.into_iter().filter(|(k, _)| keep(k)).collect())
    }
}

/// `search_criteria`, one object or an array, validated.
fn parse_criteria(
    given: Option<&Value>,
    rules: &ListRules,
    known: &[&str],
) -> Result<Vec<Value>, SdpError> {
    let criteria = match given {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        Some(_) => return Err(SdpError::type_mismatch("search_criteria")),
    };
    for c in &criteria {
        validate(c, known)?;
    }
    if !rules.mixed_date_criteria {
        let mut fields = Vec::new();
        for c in &criteria {
            criterion_fields(c, &mut fields);
        }
        if fields.len() > 1 && fields.iter().any(|f| is_date_field(f)) {
            return Err(SdpError::bad_input(
                "A date criterion cannot be combined with other criteria",
            ));
        }
    }
    Ok(criteria)
}

/// The names of `fields_required`.
fn field_names(v: &Value) -> Result<Vec<String>, SdpError> {
    let names = v
        .as_array()
        .ok_or_else(|| SdpError::type_mismatch("fields_required"))?;
    Ok(names
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

/// `sort_field`/`sort_order` and the array form `sort_fields`, as `(field, ascending)`.
fn parse_sort(
    info: &Map<String, Value>,
    known: &[&str],
    default_sort: Option<(&str, bool)>,
) -> Result<Vec<(String, bool)>, SdpError> {
    let mut sort = Vec::new();
    if let Some(field) = info.get("sort_field") {
        let field = field
            .as_str()
            .ok_or_else(|| SdpError::type_mismatch("sort_field"))?;
        sort.push((
            checked_field(field, known)?,
            ascending(info.get("sort_order"))?,
        ));
    }
    if let Some(fields) = info.get("sort_fields") {
        let fields = fields
            .as_array()
            .ok_or_else(|| SdpError::type_mismatch("sort_fields"))?;
        for f in fields {
            let field = f
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(|| SdpError::invalid_value("sort_fields"))?;
            sort.push((checked_field(field, known)?, ascending(f.get("order"))?));
        }
    }
    if let (true, Some((field, asc))) = (sort.is_empty(), default_sort) {
        sort.push((field.to_owned(), asc));
    }
    Ok(sort)
}

fn count(v: Option<&Value>, field: &str) -> Result<Option<usize>, SdpError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => wire::as_i64(v)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| SdpError::invalid_value(field)),
    }
}

fn ascending(order: Option<&Value>) -> Result<bool, SdpError> {
    match order
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("asc") => Ok(true),
        Some("desc") => Ok(false),
        Some(_) => Err(SdpError::invalid_value("sort_order")),
    }
}

fn checked_field(field: &str, known: &[&str]) -> Result<String, SdpError> {
    let head = field.split('.').next().unwrap_or_default();
    if known.is_empty() || known.contains(&head) {
        Ok(field.to_owned())
    } else {
        Err(SdpError::invalid_value(field).with_message(&format!("Invalid field {field}")))
    }
}

fn validate(c: &Value, known: &[&str]) -> Result<(), SdpError> {
    let obj = c
        .as_object()
        .ok_or_else(|| SdpError::type_mismatch("search_criteria"))?;
    if let Some(extra) = obj.keys().find(|k| !CRITERION_KEYS.contains(&k.as_str())) {
        return Err(SdpError::extra_key(extra));
    }
    if let Some(op) = obj.get("logical_operator") {
        let op = op.as_str().map(str::to_ascii_uppercase);
        if op.as_deref() != Some("AND") && op.as_deref() != Some("OR") {
            return Err(SdpError::invalid_value("logical_operator"));
        }
    }
    if let Some(field) = obj.get("field") {
        let field = field
            .as_str()
            .ok_or_else(|| SdpError::type_mismatch("field"))?;
        checked_field(field, known)?;
        let cond = obj
            .get("condition")
            .and_then(Value::as_str)
            .and_then(condition)
            .ok_or_else(|| SdpError::invalid_value("condition"))?;
        let operands = operands_of(obj).ok_or_else(|| SdpError::invalid_value("value"))?;
        let needed = match cond {
            Cond::Between | Cond::NotBetween => operands.len() == 2,
            Cond::Is | Cond::IsNot => !operands.is_empty() && operands.len() <= MAX_VALUES,
            _ => operands.len() == 1,
        };
        if !needed {
            return Err(SdpError::invalid_value("values"));
        }
    } else if obj.get("children").is_none() {
        return Err(SdpError::mandatory(vec!["field".into()]));
    }
    if let Some(children) = obj.get("children") {
        let children = children
            .as_array()
            .ok_or_else(|| SdpError::type_mismatch("children"))?;
        for child in children {
            validate(child, known)?;
        }
    }
    Ok(())
}

/// A date-time field (`created_time`, `last_updated_time`, `due_by_time` …), by name.
fn is_date_field(path: &str) -> bool {
    path.split('.')
        .next()
        .is_some_and(|head| head.ends_with("_time"))
}

/// The `field` of a criterion and of its `children`, recursively.
fn criterion_fields<'a>(c: &'a Value, out: &mut Vec<&'a str>) {
    if let Some(field) = c.get("field").and_then(Value::as_str) {
        out.push(field);
    }
    for child in c
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        criterion_fields(child, out);
    }
}

/// `value` (one operand) or `values` (several).
fn operands_of(obj: &Map<String, Value>) -> Option<Vec<Value>> {
    match (obj.get("value"), obj.get("values")) {
        (Some(v), None) => Some(vec![v.clone()]),
        (None, Some(Value::Array(vs))) => Some(vs.clone()),
        _ => None,
    }
}

/// Folds criteria left to right onto `start`.
fn fold(row: &Value, start: Option<bool>, items: &[Value]) -> bool {
    let mut acc = start;
    for item in items {
        let value = element(row, item);
        let or = item
            .get("logical_operator")
            .and_then(Value::as_str)
            .is_some_and(|op| op.eq_ignore_ascii_case("OR"));
        acc = Some(match acc {
            None => value,
            Some(a) if or => a || value,
            Some(a) => a && value,
        });
    }
    acc.unwrap_or(true)
}

fn element(row: &Value, item: &Value) -> bool {
    let children = item
        .get("children")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let own = item.get("field").and_then(Value::as_str).map(|field| {
        let cond = item
            .get("condition")
            .and_then(Value::as_str)
            .and_then(condition)
            .expect("validated");
        let operands = item.as_object().and_then(operands_of).unwrap_or_default();
        test(row, field, cond, &operands)
    });
    fold(row, own, children)
}

/// The comparable texts at `path`: dates/`display_id` objects give `value`, lookups/users `name`,
/// arrays each element.
fn candidates(row: &Value, path: &str) -> Vec<String> {
    let Some(v) = path.split('.').try_fold(row, |v, k| v.get(k)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |v: &Value| match v {
        Value::Null => {}
        Value::Object(o) => {
            if let Some(x) = o
                .get("value")
                .or_else(|| o.get("name"))
                .filter(|x| !x.is_null())
            {
                out.push(wire::scalar_text(x));
            }
        }
        other => out.push(wire::scalar_text(other)),
    };
    match v {
        Value::Array(items) => items.iter().for_each(&mut push),
        other => push(other),
    }
    out
}

fn first_operand(row: &Value, path: &str) -> Option<String> {
    candidates(row, path).into_iter().next()
}

fn compare_keys(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => compare_text(a, b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// Numbers compare as numbers (ids and epoch ms are strings), everything else case-insensitively.
fn compare_text(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    a.to_lowercase().cmp(&b.to_lowercase())
}

fn test(row: &Value, field: &str, cond: Cond, operands: &[Value]) -> bool {
    let have = candidates(row, field);
    let want: Vec<Option<String>> = operands
        .iter()
        .map(|v| {
            if v.is_null() {
                None
            } else {
                Some(wire::scalar_text(v))
            }
        })
        .collect();
    let is = |w: &Option<String>| match w {
        None => have.is_empty(),
        Some(w) => have.iter().any(|h| compare_text(h, w) == Ordering::Equal),
    };
    let first = want.first().cloned().flatten().unwrap_or_default();
    let ord = |test: fn(Ordering) -> bool| have.iter().any(|h| test(compare_text(h, &first)));
    let text = |test: fn(&str, &str) -> bool| {
        let first = first.to_lowercase();
        have.iter().any(|h| test(&h.to_lowercase(), &first))
    };
    let between = || {
        let lo = want.first().cloned().flatten().unwrap_or_default();
        let hi = want.get(1).cloned().flatten().unwrap_or_default();
        have.iter().any(|h| {
            compare_text(h, &lo) != Ordering::Less && compare_text(h, &hi) != Ordering::Greater
        })
    };
    match cond {
        Cond::Is => want.iter().any(is),
        Cond::IsNot => !want.iter().any(is),
        Cond::Gt => ord(|o| o == Ordering::Greater),
        Cond::Gte => ord(|o| o != Ordering::Less),
        Cond::Lt => ord(|o| o == Ordering::Less),
        Cond::Lte => ord(|o| o != Ordering::Greater),
        Cond::Between => between(),
        Cond::NotBetween => !between(),
        Cond::StartsWith => text(|h, w| h.starts_with(w)),
        Cond::EndsWith => text(|h, w| h.ends_with(w)),
        Cond::Contains => text(|h, w| h.contains(w)),
        Cond::NotContains => !text(|h, w| h.contains(w)),
    }
}
