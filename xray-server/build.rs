//! Rebuilds the server when a migration is added or edited: `embed_migrations!` reads the
//! `migrations/` directory at compile time, and cargo does not otherwise notice a new directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
