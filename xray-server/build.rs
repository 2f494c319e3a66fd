//! Rebuilds the server when a migration is added or edited: `embed_migrations!` reads the
//! migration directories at compile time, and cargo does not otherwise notice a new directory.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations_sqlite");
    println!("cargo:rerun-if-changed=migrations_postgres");
}
