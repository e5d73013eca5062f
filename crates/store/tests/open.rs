#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rswe_store::{Store, StoreError};
use sqlx::Row;
use support::{database, session, user};

/// Everything a migration could change: the schema and the record of applied migrations.
async fn schema(path: &std::path::Path) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path)).await.unwrap();
    let mut out = Vec::new();
    for row in sqlx::query("SELECT type, name, COALESCE(sql, '') AS sql FROM sqlite_schema ORDER BY type, name")
        .fetch_all(&pool)
        .await
        .unwrap()
    {
        out.push(format!("{} {} {}", row.get::<String, _>(0), row.get::<String, _>(1), row.get::<String, _>(2)));
    }
    for row in
        sqlx::query("SELECT version, installed_on, success, hex(checksum) FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap()
    {
        out.push(format!(
            "migration {} {} {} {}",
            row.get::<i64, _>(0),
            row.get::<String, _>(1),
            row.get::<bool, _>(2),
            row.get::<String, _>(3)
        ));
    }
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
    out.push(format!("journal {journal}"));
    pool.close().await;
    out
}

#[tokio::test]
async fn opening_an_existing_database_again_changes_nothing() {
    let (_dir, path) = database();
    let store = Store::open(&path).await.unwrap();
    let id = session(&store, "cli").await.id;
    let event = store.append(&id, user("keep me")).await.unwrap();
    store.close().await;
    let before = schema(&path).await;
    assert!(before.iter().any(|line| line.starts_with("migration ")), "{before:?}");
    assert!(before.contains(&"journal wal".to_string()), "{before:?}");

    // Through the store, twice, and through the migrator directly.
    for _ in 0..2 {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.events(&id, 0, 10).await.unwrap(), vec![event.clone()]);
        store.close().await;
    }
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path)).await.unwrap();
    sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    pool.close().await;

    assert_eq!(schema(&path).await, before);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_gives_a_clear_error() {
    let (_dir, path) = database();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let error = Store::open(&path).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not an rswe database or is damaged"), "{message}");
    assert!(message.contains("move it aside"), "{message}");
}

#[tokio::test]
async fn a_path_that_cannot_hold_a_database_gives_a_clear_error() {
    let (dir, _) = database();
    // The parent "directory" is a file.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let error = Store::open(blocker.join("rswe.db")).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::CreateDirectory { .. }), "{error:?}");
    assert!(message.contains("cannot create the directory") && message.contains("RSWE_DATA_DIR"), "{message}");

    // The path is a directory.
    let error = Store::open(dir.path()).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(message.starts_with(&format!("cannot open the database at {}", dir.path().display())), "{message}");
    assert!(message.contains("check that the directory is writable"), "{message}");
}

#[tokio::test]
async fn open_creates_the_directory_and_the_file() {
    let (_dir, path) = database();
    assert!(!path.parent().unwrap().exists());
    let store = Store::open(&path).await.unwrap();
    assert!(path.is_file());
    assert_eq!(store.location(), path.display().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_stores_may_open_a_new_database_at_once() {
    let (_dir, path) = database();
    let opening: Vec<_> = (0..6).map(|_| tokio::spawn(Store::open(path.clone()))).collect();
    let mut stores = Vec::new();
    for store in opening {
        stores.push(store.await.unwrap().unwrap());
    }
    let id = session(&stores[0], "cli").await.id;
    for store in &stores {
        store.append(&id, user("hello")).await.unwrap();
    }
    assert_eq!(stores[5].session(&id).await.unwrap().unwrap().last_seq, 6);
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(
            &sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path)).await.unwrap(),
        )
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap().count();
    assert_eq!(migrations, files as i64, "each migration applied exactly once");
}

#[tokio::test]
async fn a_database_from_a_newer_rswe_is_refused_with_advice() {
    let (_dir, path) = database();
    Store::open(&path).await.unwrap().close().await;
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path)).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from the future', TRUE, x'00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let error = Store::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Migrate { .. }), "{error:?}");
    assert!(error.to_string().contains("if a newer rswe wrote this database, upgrade rswe"), "{error}");
}
