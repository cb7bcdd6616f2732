//! Pagination: RFC 8288 `Link` (GitHub), `has_more` cursors (OpenAI,
//! Anthropic) and SCIM `startIndex`/`count`.
//!
//! Every helper returns the *complete* listing or an error — never a partial
//! one, because a partial listing would close rows of access that still
//! exists. Each stops on an empty page and refuses to loop: a repeated
//! cursor or link, or more than `max_pages` pages, is a
//! [`HttpError::Pagination`].

use std::collections::HashSet;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::{HttpClient, HttpError, Response};

/// One page of a `{ "data": [...], "has_more": bool, "last_id": … }` listing
/// (OpenAI admin API, Anthropic admin API).
#[derive(Debug, Clone, Deserialize)]
pub struct CursorPage<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Whether another page follows. Required: a missing flag must not end
    /// a listing early.
    pub has_more: bool,
    /// Id of the first item (unused for forward paging).
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last item: the cursor of the next page.
    #[serde(default)]
    pub last_id: Option<String>,
    /// Explicit next cursor (OpenAI role endpoints); preferred over `last_id`.
    #[serde(default)]
    pub next: Option<String>,
}

/// One page of a SCIM `ListResponse` (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Deserialize)]
pub struct ScimListResponse<T> {
    /// Total number of results across all pages. (SCIM attribute names are
    /// case-insensitive, RFC 7643 §2.1; servers written for Entra ID have
    /// been seen capitalising them, hence the aliases.)
    #[serde(rename = "totalResults", alias = "TotalResults", alias = "totalresults")]
    pub total_results: u64,
    /// The items of this page (some servers omit the key when empty).
    #[serde(rename = "Resources", alias = "resources", default = "Vec::new")]
    pub resources: Vec<T>,
    /// 1-based index of the first item, as echoed by the server.
    #[serde(rename = "startIndex", alias = "StartIndex", alias = "startindex", default)]
    pub start_index: Option<u64>,
    /// Items on this page, as reported by the server.
    #[serde(rename = "itemsPerPage", alias = "ItemsPerPage", alias = "itemsperpage", default)]
    pub items_per_page: Option<u64>,
}

/// The guards of a `Link`-paged listing, in one place for every caller
/// (the helpers below, and connectors that fetch pages themselves, e.g.
/// through a response cache): at most `max_pages` pages, next links
/// followed verbatim but only on the first request's origin (our
/// credentials go with them), and never the same page twice.
pub(crate) struct LinkPager {
    first: Url,
    listing: String,
    next: Option<Url>,
    seen: HashSet<String>,
    pages: u32,
}

impl LinkPager {
    /// A listing starting at `path_or_url` with `query`.
    pub(crate) fn new(client: &HttpClient, path_or_url: &str, query: &[(&str, &str)]) -> Result<LinkPager, HttpError> {
        let first = client.resolve(path_or_url, query)?;
        let listing = client.show(first.as_str());
        let seen = HashSet::from([first.to_string()]);
        Ok(LinkPager { next: Some(first.clone()), first, listing, seen, pages: 0 })
    }

    /// The next page to fetch (`None`: the listing is complete), counted
    /// against `max_pages`.
    pub(crate) fn next_page(&mut self, client: &HttpClient) -> Result<Option<Url>, HttpError> {
        let Some(url) = self.next.take() else { return Ok(None) };
        self.pages = client.next_page(self.pages, &self.listing)?;
        self.next = Some(url.clone());
        Ok(Some(url))
    }

    /// Takes the `Link` header of the page just fetched: its `rel="next"`
    /// becomes the next page, or the listing ends. Fails on a next link to
    /// another origin, an invalid one, or one already followed.
    pub(crate) fn follow(&mut self, client: &HttpClient, link: Option<&str>) -> Result<(), HttpError> {
        let Some(current) = self.next.take() else { return Ok(()) };
        let Some(next) = link.and_then(super::parse_link_next) else { return Ok(()) };
        let next_url = current.join(&next).map_err(|e| HttpError::Pagination {
            url: self.listing.clone(),
            message: format!("invalid next link: {e}"),
        })?;
        if next_url.origin() != self.first.origin() {
            return Err(HttpError::Pagination {
                url: self.listing.clone(),
                message: format!("next link points to another origin ({})", client.show(next_url.as_str())),
            });
        }
        if !self.seen.insert(next_url.to_string()) {
            return Err(HttpError::Pagination {
                url: self.listing.clone(),
                message: format!("server returned next link to page {} again", self.pages),
            });
        }
        self.next = Some(next_url);
        Ok(())
    }
}

impl HttpClient {
    /// Lists all items of a `Link`-paginated endpoint whose body is a JSON
    /// array (GitHub): follows `rel="next"` verbatim until there is none.
    pub async fn paginate_link<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, HttpError> {
        self.paginate_link_map(path_or_url, query, |items: Vec<T>| items).await
    }

    /// Like [`HttpClient::paginate_link`] for wrapped bodies such as GitHub's
    /// `{ "total_count": 2, "secrets": [...] }`: `items_of` picks the items
    /// out of each decoded page `P`.
    ///
    /// Next links must stay on the origin of the first request: following a
    /// link elsewhere would send our credentials there.
    pub async fn paginate_link_map<P, T, F>(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
        mut items_of: F,
    ) -> Result<Vec<T>, HttpError>
    where
        P: DeserializeOwned,
        F: FnMut(P) -> Vec<T>,
    {
        let mut pager = LinkPager::new(self, path_or_url, query)?;
        let mut items = Vec::new();
        while let Some(url) = pager.next_page(self)? {
            let page: Response<P> = self.get_url(url).await?;
            let link = page.link.clone();
            let page_items = items_of(page.body);
            if page_items.is_empty() {
                break;
            }
            items.extend(page_items);
            pager.follow(self, link.as_deref())?;
        }
        Ok(items)
    }

    /// Lists all items of a `{data, has_more, last_id}` endpoint: the next
    /// page is requested with `cursor_param=<last_id>` (`after` for OpenAI,
    /// `after_id` for Anthropic).
    pub async fn paginate_cursor<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
        cursor_param: &str,
    ) -> Result<Vec<T>, HttpError> {
        let listing = self.show(path_or_url);
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        let mut pages: u32 = 0;
        loop {
            pages = self.next_page(pages, &listing)?;
            let mut page_query = query.to_vec();
            if let Some(cursor) = cursor.as_deref() {
                page_query.push((cursor_param, cursor));
            }
            let page: Response<CursorPage<T>> = self.get_json(path_or_url, &page_query).await?;
            let page = page.body;
            if page.data.is_empty() {
                break;
            }
            items.extend(page.data);
            if !page.has_more {
                break;
            }
            let next = page.next.or(page.last_id).ok_or_else(|| HttpError::Pagination {
                url: listing.clone(),
                message: "has_more is true but the page names no cursor".to_string(),
            })?;
            if !seen.insert(next.clone()) {
                return Err(HttpError::Pagination {
                    url: listing,
                    message: format!("server returned the same cursor twice (page {pages})"),
                });
            }
            cursor = Some(next);
        }
        Ok(items)
    }

    /// Lists all resources of a SCIM endpoint with `startIndex` (1-based) and
    /// `count=page_size`, advancing by the number of resources received
    /// (servers may cap the page size) until `totalResults` is reached.
    pub async fn paginate_scim<T: DeserializeOwned>(
        &self,
        path_or_url: &str,
        query: &[(&str, &str)],
        page_size: u32,
    ) -> Result<Vec<T>, HttpError> {
        let listing = self.show(path_or_url);
        let count = page_size.max(1).to_string();
        let mut start: u64 = 1;
        let mut previous_echo: Option<u64> = None;
        let mut items = Vec::new();
        let mut pages: u32 = 0;
        loop {
            pages = self.next_page(pages, &listing)?;
            let start_text = start.to_string();
            let mut page_query = query.to_vec();
            page_query.push(("startIndex", &start_text));
            page_query.push(("count", &count));
            let page: Response<ScimListResponse<T>> = self.get_json(path_or_url, &page_query).await?;
            let page = page.body;
            // A server that ignores startIndex answers the same page again.
            if let Some(echo) = page.start_index {
                if previous_echo == Some(echo) {
                    return Err(HttpError::Pagination {
                        url: listing,
                        message: format!("server returned startIndex {echo} twice"),
                    });
                }
                previous_echo = Some(echo);
            }
            let received = page.resources.len() as u64;
            if received == 0 {
                break;
            }
            items.extend(page.resources);
            start += received;
            if start > page.total_results {
                break;
            }
        }
        Ok(items)
    }

    /// Counts a page, failing when it would exceed `max_pages`.
    fn next_page(&self, pages: u32, listing: &str) -> Result<u32, HttpError> {
        let max = self.max_pages();
        if pages >= max {
            return Err(HttpError::Pagination { url: listing.to_string(), message: format!("more than {max} pages") });
        }
        Ok(pages + 1)
    }
}
