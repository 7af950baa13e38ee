//! Admin: the spam keywords (SPEC §2.3).

use hyper::StatusCode;
use mcmp_engine::catalog::table;
use serde_json::json;

use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, deleted_or_404, store_error, Answer};

pub(crate) async fn list_spam_keywords(api: &ShardApi) -> Answer {
    let rows = api
        .shard
        .catalog_read(|s| Ok(s.scan(table::SPAM_KEYWORDS)?))
        .await
        .map_err(store_error)?;
    let keywords: Vec<String> = rows.into_iter().map(|(k, _)| k).collect();
    Ok(http::json(StatusCode::OK, &json!({ "keywords": keywords })))
}

pub(crate) async fn put_spam_keyword(api: &ShardApi, k: &str) -> Answer {
    if k.trim().is_empty() || k.chars().count() > 100 {
        return Err(bad_request("a spam keyword is 1-100 characters"));
    }
    let (key, catalog) = (k.to_string(), api.shard.catalog());
    api.shard
        .catalog_write(move |s| {
            s.put(table::SPAM_KEYWORDS, &key, b"null")?;
            catalog.invalidate_spam();
            Ok(())
        })
        .await
        .map_err(store_error)?;
    Ok(http::json(StatusCode::OK, &json!({ "keyword": k })))
}

pub(crate) async fn delete_spam_keyword(api: &ShardApi, k: &str) -> Answer {
    let (key, catalog) = (k.to_string(), api.shard.catalog());
    let deleted = api
        .shard
        .catalog_write(move |s| {
            let deleted = s.delete(table::SPAM_KEYWORDS, &key)?;
            catalog.invalidate_spam();
            Ok(deleted)
        })
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "keyword")
}
