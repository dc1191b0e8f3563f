//! The pull listing in the Hydra collection form Phraseanet's pull worker
//! reads (`hydra:member`, `hydra:totalItems`, `hydra:view`/`hydra:next`).

use crate::commit::Commit;

pub fn commits_collection(
    commits: &[Commit],
    total: usize,
    page: usize,
    per_page: usize,
    base_url: &str,
) -> serde_json::Value {
    let last = total.div_ceil(per_page).max(1);
    let link = |p: usize| format!("/commits?acknowledged=false&page={p}");
    let mut view = serde_json::json!({
        "@id": link(page),
        "@type": "hydra:PartialCollectionView",
        "hydra:first": link(1),
        "hydra:last": link(last),
    });
    if page < last {
        view["hydra:next"] = link(page + 1).into();
    }
    if page > 1 {
        view["hydra:previous"] = link(page - 1).into();
    }
    serde_json::json!({
        "@context": "/contexts/Commit",
        "@id": "/commits",
        "@type": "hydra:Collection",
        "hydra:member": commits.iter().map(|c| c.to_json(base_url)).collect::<Vec<_>>(),
        "hydra:totalItems": total,
        "hydra:view": view,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_links() {
        let v = commits_collection(&[], 45, 2, 20, "http://x");
        assert_eq!(v["hydra:totalItems"], 45);
        assert_eq!(
            v["hydra:view"]["hydra:next"],
            "/commits?acknowledged=false&page=3"
        );
        assert_eq!(
            v["hydra:view"]["hydra:previous"],
            "/commits?acknowledged=false&page=1"
        );
        let v = commits_collection(&[], 45, 3, 20, "http://x");
        assert!(v["hydra:view"].get("hydra:next").is_none());
        let v = commits_collection(&[], 0, 1, 20, "http://x");
        assert_eq!(
            v["hydra:view"]["hydra:last"],
            "/commits?acknowledged=false&page=1"
        );
    }
}
