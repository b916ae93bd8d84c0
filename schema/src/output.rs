//! The envelope of both tools' `--json` output (README "JSON output"): every `--json` run
//! prints one object with `"schema": 1` and its `exit_code`; a run that failed carries an
//! [`ErrorObject`] whose `class` is its own field beside the message. The per-command
//! bodies are defined beside the commands (`pkgtool`, `hotfix-runtime`); the JSON Schemas
//! of the whole outputs are generated from these types and committed in `schema/json/`.

use schemars::JsonSchema;
use serde::Serialize;

/// The version of the JSON output's shape. It changes only when a field is removed,
/// renamed or changes meaning; new fields may appear without it changing.
pub const OUTPUT_SCHEMA_VERSION: u32 = 1;

/// A run that succeeded (any exit code but an error's): the command's fields, flattened,
/// between `schema` and `exit_code`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Success<T> {
    /// The version of the output's shape: 1.
    #[schemars(extend("const" = 1))]
    pub schema: u32,
    /// The command's own fields.
    #[serde(flatten)]
    pub body: T,
    /// The process's exit code (DESIGN.md "Exit codes").
    pub exit_code: u8,
}

impl<T> Success<T> {
    /// The output of a run that ends with `exit_code`.
    pub fn new(body: T, exit_code: u8) -> Self {
        Success { schema: OUTPUT_SCHEMA_VERSION, body, exit_code }
    }
}

/// A run that failed: the error, and nothing else.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The version of the output's shape: 1.
    #[schemars(extend("const" = 1))]
    pub schema: u32,
    /// What went wrong.
    pub error: ErrorObject,
    /// The process's exit code (DESIGN.md "Exit codes"): never 0.
    #[schemars(range(min = 1))]
    pub exit_code: u8,
}

impl Failure {
    /// The output of a run that failed with `class` and `message`.
    pub fn new(class: &str, message: String, exit_code: u8) -> Self {
        Failure { schema: OUTPUT_SCHEMA_VERSION, error: ErrorObject { class: class.to_string(), message }, exit_code }
    }
}

/// An error as data.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorObject {
    /// The error's class, stable for scripts: `usage`, `io`, `busy`, `not-applicable`,
    /// `already-installed`, `refused-by-policy`, an integrity class such as
    /// `bad-signature` (schema/FORMAT.md §9), … (README "JSON output" lists them all).
    pub class: String,
    /// The message the text output prints, naming the file and the cause.
    pub message: String,
}

/// A command's whole output: its success shape or a failure (the JSON Schema's `anyOf`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Outcome<T> {
    /// The command ran.
    Success(Success<T>),
    /// It failed.
    Failure(Failure),
}

/// A command whose output is one sentence.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Message {
    /// The sentence.
    pub message: String,
}

/// Pretty JSON of a command's output, ending with a newline.
pub fn to_text<T: Serialize>(v: &T) -> String {
    // Serializing these types cannot fail: every map key is a string.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// The JSON Schema of `T`'s [`Outcome`], as committed in `schema/json/`, titled `title`.
pub fn schema_text<T: JsonSchema>(title: &str) -> String {
    let mut schema = schemars::schema_for!(Outcome<T>);
    schema.insert("title".into(), serde_json::Value::String(title.to_string()));
    to_text(&schema)
}
