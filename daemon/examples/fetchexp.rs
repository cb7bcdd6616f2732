use futures_util::TryStreamExt;
use sqlx::Row;
use std::time::Instant;
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    sqlx::any::install_default_drivers();
    let pool =
        sqlx::any::AnyPoolOptions::new().max_connections(2).connect("sqlite:///tmp/exp/gen/bench.db?mode=ro").await?;
    for _ in 0..2 {
        let t = Instant::now();
        let mut rows = sqlx::query(
            "SELECT edge_key AS k, body_hash, valid_from FROM edges WHERE source = $1 AND valid_to IS NULL",
        )
        .bind("apps")
        .fetch(&pool);
        let (mut n, mut bytes) = (0usize, 0usize);
        while let Some(row) = rows.try_next().await? {
            let k: String = row.try_get("k")?;
            let h: String = row.try_get("body_hash")?;
            let v: i64 = row.try_get("valid_from")?;
            n += 1;
            bytes += k.len() + h.len() + v as usize % 2;
        }
        drop(rows);
        println!("per row: {n} rows {bytes} bytes in {:.2} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (mut n, mut bytes, mut after) = (0usize, 0usize, 0i64);
        loop {
            let row = sqlx::query("SELECT json_group_array(json_array(edge_key, body_hash, valid_from)) AS batch, MAX(rowid) AS last, COUNT(*) AS n FROM (SELECT rowid, edge_key, body_hash, valid_from FROM edges WHERE source = $1 AND valid_to IS NULL AND rowid > $2 ORDER BY rowid LIMIT 8192)").bind("apps").bind(after).fetch_one(&pool).await?;
            let count: i64 = row.try_get("n")?;
            if count == 0 {
                break;
            }
            after = row.try_get("last")?;
            let batch: String = row.try_get("batch")?;
            let items: Vec<(String, String, i64)> = serde_json::from_str(&batch)?;
            for (k, h, v) in items {
                n += 1;
                bytes += k.len() + h.len() + v as usize % 2;
            }
        }
        println!("json windows: {n} rows {bytes} bytes in {:.2} s", t.elapsed().as_secs_f64());
    }
    Ok(())
}
