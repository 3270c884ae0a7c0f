//! `authledger user ...`.

use std::io::BufRead;

use clap::{Args, Subcommand};

use super::cli_metadata;
use super::output::{all_pages, print_json};
use crate::admin::{self, users::UserInput};
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Register a user; prints it as JSON.
    Create {
        /// The sign-in name: lowercase letters, digits and . _ - @ +.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        /// Their email address (the `email` claim).
        #[arg(long)]
        email: Option<String>,
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Given name (the `given_name` claim).
        #[arg(long)]
        given_name: Option<String>,
        /// Family name (the `family_name` claim).
        #[arg(long)]
        family_name: Option<String>,
        /// A URL of their picture (the `picture` claim).
        #[arg(long)]
        picture: Option<String>,
        /// A role (repeatable), e.g. admin or auditor for the console.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Every user, as JSON (or --format table).
    List(super::output::ListFormat),
    /// One user with their roles, profile and two-factor state, as JSON.
    Show {
        /// The user's name.
        username: String,
    },
    /// Stop the person from signing in; their sessions end and their tokens stop working.
    Disable {
        /// The user's name.
        username: String,
    },
    /// Let a disabled person sign in again.
    Enable {
        /// The user's name.
        username: String,
    },
    /// Erase a person's data (right to erasure): their key is destroyed, so the profile, IP
    /// addresses and user agents in their events can no longer be read; the events stay and
    /// the ledger still verifies. The account stays, disabled. Cannot be undone.
    Erase {
        /// The user's name.
        username: String,
        /// Why (e.g. the request's reference), recorded in the clear: do not name the person.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Turn a person's two-factor sign-in off (a lost phone); they may set it up again.
    ResetTwoFactor {
        /// The user's name.
        username: String,
    },
    /// Replace the person's roles with those given (repeat --role), or take them all away
    /// with --none.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["roles", "none"])))]
    SetRoles {
        /// The user's name.
        username: String,
        /// A role (repeatable), e.g. admin, auditor, or one a client's allowed roles names.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Take every role away (required to mean it: a forgotten --role must not).
        #[arg(long, conflicts_with = "roles")]
        none: bool,
    },
    /// Set a new password (from --password, or the first line of stdin).
    SetPassword {
        /// The user's name.
        username: String,
        #[command(flatten)]
        password: PasswordArg,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub(super) struct PasswordArg {
    /// The password (visible to other local users in the process list; prefer --password-stdin).
    #[arg(long)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArg {
    fn read(self) -> Result<String, AppError> {
        match self.password {
            Some(password) => Ok(password),
            None => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| AppError::invalid(format!("password: cannot read stdin: {e}")))?;
                Ok(line.trim_end_matches(['\r', '\n']).to_owned())
            }
        }
    }
}

pub(super) async fn user(store: &Store, command: UserCommand) -> Result<(), AppError> {
    let metadata = cli_metadata();
    match command {
        UserCommand::Create {
            username,
            password,
            email,
            name,
            given_name,
            family_name,
            picture,
            roles,
        } => {
            let input = UserInput {
                username,
                password: password.read()?,
                email,
                name,
                given_name,
                family_name,
                picture,
                roles,
            };
            print_json(&admin::users::create(store, input, &metadata).await?)
        }
        UserCommand::List(list) => {
            let users = all_pages(
                |after| async move {
                    admin::users::list(store, after.as_deref(), admin::MAX_PAGE).await
                },
                |u| u.username.clone(),
            )
            .await?;
            super::output::print_records(
                &users,
                list.format,
                &[
                    ("USERNAME", "/username"),
                    ("STATUS", "/status"),
                    ("ROLES", "/roles"),
                    ("EMAIL", "/profile/email"),
                    ("TWO_FACTOR", "/two_factor"),
                    ("LAST_LOGIN", "/last_login_at"),
                ],
            )
        }
        UserCommand::Show { username } => print_json(&admin::users::show(store, &username).await?),
        UserCommand::Disable { username } => {
            admin::users::disable(store, &username, &metadata).await?;
            eprintln!("user {username} disabled");
            Ok(())
        }
        UserCommand::Enable { username } => {
            admin::users::enable(store, &username, &metadata).await?;
            eprintln!("user {username} enabled");
            Ok(())
        }
        UserCommand::Erase { username, reason } => {
            let erased = admin::users::erase(store, &username, reason, &metadata).await?;
            if erased.recorded {
                eprintln!("user {username} erased: their personal data can no longer be read");
            } else {
                eprintln!("user {username} was already erased; its erasure is now complete");
            }
            Ok(())
        }
        UserCommand::ResetTwoFactor { username } => {
            print_json(&admin::users::reset_two_factor(store, &username, &metadata).await?)
        }
        UserCommand::SetRoles {
            username, roles, ..
        } => print_json(&admin::users::set_roles(store, &username, &roles, &metadata).await?),
        UserCommand::SetPassword { username, password } => {
            admin::users::set_password(store, &username, &password.read()?, &metadata).await?;
            eprintln!("password of {username} changed");
            Ok(())
        }
    }
}
