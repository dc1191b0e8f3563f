//! HTTP routing as Spin does it: exact routes, `:name` segments and trailing
//! `/...` wildcards; the most specific route wins.

use anyhow::{Result, bail, ensure};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed `route = "…"` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// What the router found for a request path; becomes the `spin-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// The route exactly as written in `spin.toml` (`spin-raw-component-route`).
    pub raw_route: String,
    /// The route without its wildcard (`spin-component-route`).
    pub component_route: String,
    /// The part of the path the wildcard matched, `""` for exact routes.
    pub path_info: String,
    /// `:name` captures, in order.
    pub params: Vec<(String, String)>,
}

impl Route {
    pub fn parse(raw: &str) -> Result<Route> {
        ensure!(raw.starts_with('/'), "route `{raw}` must start with `/`");
        let (body, wildcard) = if raw == "/..." {
            ("", true)
        } else if let Some(prefix) = raw.strip_suffix("/...") {
            (prefix, true)
        } else {
            (raw.trim_end_matches('/'), false)
        };
        let mut segments = Vec::new();
        for seg in body.split('/').skip(1) {
            if seg.is_empty() {
                bail!("route `{raw}` has an empty segment");
            }
            if seg.contains("...") {
                bail!("route `{raw}`: `...` is only allowed as the last segment");
            }
            if let Some(name) = seg.strip_prefix(':') {
                ensure!(!name.is_empty(), "route `{raw}` has an unnamed `:` segment");
                segments.push(Segment::Param(name.to_string()));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        Ok(Route {
            raw: raw.to_string(),
            segments,
            wildcard,
        })
    }

    fn component_route(&self) -> String {
        if self.wildcard {
            self.raw.strip_suffix("/...").unwrap_or("").to_string()
        } else {
            self.raw.clone()
        }
    }

    /// Matches `path` (no query string) and returns captures and path info.
    fn matches(&self, path: &str) -> Option<(Vec<(String, String)>, String)> {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let parts: Vec<&str> = if trimmed == "/" || trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').skip(1).collect()
        };
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_string())),
            }
        }
        let path_info = if self.wildcard {
            // Keep the caller's exact remainder, trailing slash included.
            let consumed: usize = self.segments.len();
            let mut rest = path;
            for _ in 0..consumed {
                let after = &rest[1..];
                rest = match after.find('/') {
                    Some(i) => &after[i..],
                    None => "",
                };
            }
            rest.to_string()
        } else {
            String::new()
        };
        Some((params, path_info))
    }

    /// Specificity rank: literals beat parameters beat wildcards, segment by
    /// segment from the left; a longer route beats a shorter one.
    fn rank(&self) -> Vec<u8> {
        let mut r: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Param(_) => 2,
            })
            .collect();
        r.push(if self.wildcard { 1 } else { 4 });
        r
    }
}

/// The application's route table.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Result<Router> {
        let mut routes: Vec<(Route, String)> = Vec::new();
        for (raw, component) in entries {
            let route = Route::parse(&raw)?;
            if let Some((_, other)) = routes.iter().find(|(r, _)| {
                r.segments.len() == route.segments.len()
                    && r.wildcard == route.wildcard
                    && same_shape(r, &route)
            }) {
                bail!("duplicate route `{raw}` (components `{other}` and `{component}`)");
            }
            routes.push((route, component));
        }
        Ok(Router { routes })
    }

    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes
            .iter()
            .filter_map(|(route, component)| {
                route
                    .matches(path)
                    .map(|(params, path_info)| (route, component, params, path_info))
            })
            .max_by(|a, b| a.0.rank().cmp(&b.0.rank()))
            .map(|(route, component, params, path_info)| RouteMatch {
                component: component.clone(),
                raw_route: route.raw.clone(),
                component_route: route.component_route(),
                path_info,
                params,
            })
    }
}

fn same_shape(a: &Route, b: &Route) -> bool {
    a.segments
        .iter()
        .zip(&b.segments)
        .all(|(x, y)| match (x, y) {
            (Segment::Literal(l), Segment::Literal(m)) => l == m,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            [
                ("/...", "fallback"),
                ("/status", "status"),
                ("/api/...", "api"),
                ("/api/users/:id", "user"),
                ("/api/users/me", "me"),
                ("/api/users/:id/...", "user-sub"),
            ]
            .map(|(r, c)| (r.to_string(), c.to_string())),
        )
        .unwrap()
    }

    #[test]
    fn most_specific_route_wins() {
        let r = router();
        let table = [
            ("/status", "status", "", vec![]),
            ("/status/", "status", "", vec![]),
            ("/statusx", "fallback", "/statusx", vec![]),
            ("/", "fallback", "/", vec![]),
            ("/api", "api", "", vec![]),
            ("/api/x/y", "api", "/x/y", vec![]),
            ("/api/users/me", "me", "", vec![]),
            ("/api/users/42", "user", "", vec![("id", "42")]),
            (
                "/api/users/42/photos/1",
                "user-sub",
                "/photos/1",
                vec![("id", "42")],
            ),
        ];
        for (path, component, info, params) in table {
            let m = r
                .route(path)
                .unwrap_or_else(|| panic!("no match for {path}"));
            assert_eq!(m.component, component, "{path}");
            assert_eq!(m.path_info, info, "{path}");
            let params: Vec<(String, String)> = params
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(m.params, params, "{path}");
        }
    }

    #[test]
    fn headers_parts_for_wildcards() {
        let m = router().route("/api/a").unwrap();
        assert_eq!(m.raw_route, "/api/...");
        assert_eq!(m.component_route, "/api");
        let m = router().route("/status").unwrap();
        assert_eq!(m.component_route, "/status");
    }

    #[test]
    fn unknown_route_is_none() {
        let r = Router::new([("/a".to_string(), "a".to_string())]).unwrap();
        assert!(r.route("/b").is_none());
        assert!(r.route("/a/b").is_none());
    }

    #[test]
    fn rejects_bad_and_duplicate_routes() {
        assert!(Route::parse("status").is_err());
        assert!(Route::parse("/a//b").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        assert!(Router::new([("/a/:x".into(), "1".into()), ("/a/:y".into(), "2".into())]).is_err());
        assert!(Router::new([("/a".into(), "1".into()), ("/a/".into(), "2".into())]).is_err());
    }
}
