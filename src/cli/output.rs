//! What commands print: JSON for programs on stdout, a line at a time, and the paging
//! through every item of a listing.

use std::io::Write;

use serde::Serialize;

use crate::admin;
use crate::error::AppError;

/// Aligned columns for people, without borders so that `grep` and `cut` still work on them.
pub(super) fn table<T: Into<comfy_table::Cell>>(
    header: impl IntoIterator<Item = T>,
) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(header);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// Records as JSON (an array, the default: what scripts read) or, with `--format table`, one
/// row each with the `columns` given as (header, JSON pointer into the record).
pub(super) fn print_records(
    records: &impl Serialize,
    format: super::audit::Format,
    columns: &[(&str, &str)],
) -> Result<(), AppError> {
    if format == super::audit::Format::Json {
        return print_json(records);
    }
    let value = serde_json::to_value(records).map_err(|e| AppError::Internal(e.into()))?;
    let cell = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "-".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) if items.is_empty() => "-".to_owned(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    let mut table = table(columns.iter().map(|(header, _)| *header));
    for record in value.as_array().map(Vec::as_slice).unwrap_or_default() {
        table.add_row(
            columns
                .iter()
                .map(|(_, pointer)| cell(record.pointer(pointer))),
        );
    }
    let mut out = std::io::stdout().lock();
    for line in table.lines() {
        if !write_line(&mut out, line.trim_end())? {
            break;
        }
    }
    Ok(())
}

/// `--format` of a listing: JSON unless asked for a table.
#[derive(clap::Args, Clone, Copy)]
pub(super) struct ListFormat {
    /// json (the default, for programs) or table (for people).
    #[arg(long, value_enum, default_value_t = super::audit::Format::Json)]
    pub format: super::audit::Format,
}

pub(super) fn print_json(value: &impl Serialize) -> Result<(), AppError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| AppError::Internal(e.into()))?;
    write_line(&mut std::io::stdout().lock(), &text).map(drop)
}

/// Writes one line of output. A reader that went away (`| head`) is not an error: returns
/// `Ok(false)` so the caller stops producing.
pub(super) fn write_line(out: &mut impl Write, line: &str) -> Result<bool, AppError> {
    match writeln!(out, "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(AppError::Internal(e.into())),
    }
}

/// Follows keyset pages to the end.
pub(super) async fn all_pages<T, F, Fut>(
    mut page: F,
    key: impl Fn(&T) -> String,
) -> Result<Vec<T>, AppError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, AppError>>,
{
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = page(after.take()).await?;
        let full = batch.len() as i64 == admin::MAX_PAGE;
        after = batch.last().map(&key);
        all.extend(batch);
        if !full {
            return Ok(all);
        }
    }
}
