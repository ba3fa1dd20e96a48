//! Services from SDP: its categories and their subcategories as last fetched, which of them the
//! admin offers to customers, and the choice a ticket records. Ids are SDP's (names are not stable
//! keys); names are kept to show.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An SDP reference: its id and the name it had when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub subcategories: Vec<Named>,
}

/// SDP's categories as last fetched. A failed fetch keeps them and says why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    #[serde(default)]
    pub categories: Vec<Category>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub fetched_at: Option<OffsetDateTime>,
    /// The last fetch's failure, when it failed after the last success.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub failed_at: Option<OffsetDateTime>,
}

/// The category (and subcategory) a ticket was raised under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceChoice {
    pub category: Named,
    #[serde(default)]
    pub subcategory: Option<Named>,
}

impl ServiceChoice {
    /// "Category — Subcategory", or the category alone.
    pub fn label(&self) -> String {
        label(
            &self.category.name,
            self.subcategory.as_ref().map(|s| s.name.as_str()),
        )
    }
}

fn label(category: &str, subcategory: Option<&str>) -> String {
    match subcategory {
        Some(sub) => format!("{category} — {sub}"),
        None => category.to_owned(),
    }
}

/// What customers may choose: entries `"<category id>"` (the category alone) and
/// `"<category id>/<subcategory id>"`, and whether a choice is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offered {
    #[serde(default)]
    pub entries: BTreeSet<String>,
    #[serde(default)]
    pub required: bool,
}

/// One option of the form's select: its value (an [`Offered`] entry) and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOption {
    pub value: String,
    pub label: String,
}

/// Why a choice was refused: the field at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceError {
    pub field: &'static str,
    pub message: &'static str,
}

fn blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The entry of a category, or of one of its subcategories.
pub fn entry(category: &str, subcategory: Option<&str>) -> String {
    match subcategory {
        Some(sub) => format!("{category}/{sub}"),
        None => category.to_owned(),
    }
}

impl Offered {
    /// The offered entries that the catalogue still has, grouped by category in SDP's order.
    pub fn options(&self, catalogue: &Catalogue) -> Vec<(String, Vec<ServiceOption>)> {
        catalogue
            .categories
            .iter()
            .filter_map(|c| {
                let alone = self.entries.contains(&c.id).then(|| ServiceOption {
                    value: c.id.clone(),
                    label: c.name.clone(),
                });
                let options: Vec<ServiceOption> = alone
                    .into_iter()
                    .chain(c.subcategories.iter().filter_map(|s| {
                        let value = entry(&c.id, Some(&s.id));
                        self.entries.contains(&value).then(|| ServiceOption {
                            value,
                            label: label(&c.name, Some(&s.name)),
                        })
                    }))
                    .collect();
                (!options.is_empty()).then(|| (c.name.clone(), options))
            })
            .collect()
    }

    /// Checks a customer's choice against what is offered. Nothing offered: no choice is taken.
    pub fn choose(
        &self,
        catalogue: &Catalogue,
        category: Option<&str>,
        subcategory: Option<&str>,
    ) -> Result<Option<ServiceChoice>, ChoiceError> {
        let (category, subcategory) = (blank(category), blank(subcategory));
        let offered = !self.options(catalogue).is_empty();
        let Some(category) = category else {
            return match subcategory {
                Some(_) => Err(ChoiceError {
                    field: "category",
                    message: "a subcategory needs its category",
                }),
                None if offered && self.required => Err(ChoiceError {
                    field: "category",
                    message: "choose a category",
                }),
                None => Ok(None),
            };
        };
        let not_offered = |field| ChoiceError {
            field,
            message: "this category is not one customers may choose",
        };
        if !offered {
            return Err(ChoiceError {
                field: "category",
                message: "no categories are offered; leave the category out",
            });
        }
        let found = catalogue.categories.iter().find(|c| c.id == category);
        let Some(found) = found else {
            return Err(not_offered("category"));
        };
        let sub = match subcategory {
            Some(sub) => {
                let known = found.subcategories.iter().find(|s| s.id == sub);
                match known {
                    Some(s) if self.entries.contains(&entry(category, Some(sub))) => {
                        Some(s.clone())
                    }
                    _ => return Err(not_offered("subcategory")),
                }
            }
            None if self.entries.contains(category) => None,
            None => {
                return Err(ChoiceError {
                    field: "subcategory",
                    message: "choose a subcategory of this category",
                });
            }
        };
        Ok(Some(ServiceChoice {
            category: Named {
                id: found.id.clone(),
                name: found.name.clone(),
            },
            subcategory: sub,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let named = |id: &str, name: &str| Named {
            id: id.into(),
            name: name.into(),
        };
        Catalogue {
            categories: vec![
                Category {
                    id: "1".into(),
                    name: "Hardware".into(),
                    subcategories: vec![named("11", "Laptop"), named("12", "Printer")],
                },
                Category {
                    id: "2".into(),
                    name: "Network".into(),
                    subcategories: vec![named("21", "VPN")],
                },
                Category {
                    id: "3".into(),
                    name: "General".into(),
                    subcategories: Vec::new(),
                },
            ],
            ..Catalogue::default()
        }
    }

    fn offered(entries: &[&str], required: bool) -> Offered {
        Offered {
            entries: entries.iter().map(|e| (*e).to_owned()).collect(),
            required,
        }
    }

    #[test]
    fn options_list_only_what_is_offered_grouped_by_category() {
        let o = offered(&["1/12", "3", "9", "2/99"], false);
        let options = o.options(&catalogue());
        let labels: Vec<(&str, Vec<&str>)> = options
            .iter()
            .map(|(g, os)| (g.as_str(), os.iter().map(|o| o.label.as_str()).collect()))
            .collect();
        assert_eq!(
            labels,
            [
                ("Hardware", vec!["Hardware — Printer"]),
                ("General", vec!["General"])
            ]
        );
    }

    #[test]
    fn a_choice_is_taken_only_when_offered_and_names_the_field_at_fault() {
        let c = catalogue();
        let o = offered(&["1/12", "3"], false);
        let printer = o.choose(&c, Some("1"), Some("12")).unwrap().unwrap();
        assert_eq!(printer.label(), "Hardware — Printer");
        assert_eq!(
            o.choose(&c, Some("3"), None).unwrap().unwrap().label(),
            "General"
        );
        assert_eq!(o.choose(&c, None, None), Ok(None));
        let field = |cat, sub| o.choose(&c, cat, sub).unwrap_err().field;
        assert_eq!(field(Some("2"), Some("21")), "subcategory");
        assert_eq!(field(Some("9"), None), "category");
        assert_eq!(field(Some("1"), None), "subcategory");
        assert_eq!(field(Some("1"), Some("11")), "subcategory");
        assert_eq!(field(None, Some("12")), "category");
        let required = offered(&["3"], true);
        assert_eq!(
            required.choose(&c, None, None).unwrap_err().field,
            "category"
        );
        // Nothing offered: the form has no select, and a category given is refused.
        let none = Offered::default();
        assert_eq!(none.choose(&c, None, None), Ok(None));
        assert_eq!(
            none.choose(&c, Some("3"), None).unwrap_err().field,
            "category"
        );
    }
}
