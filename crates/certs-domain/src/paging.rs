//! certctl's list convention: `page` (from 1, default 1) and `per_page`
//! (default 50, at most 500), answered as `{data, total, page, per_page}`.

/// Default `per_page`.
pub const DEFAULT_PER_PAGE: i64 = 50;
/// Largest `per_page` a client may ask for.
pub const MAX_PER_PAGE: i64 = 500;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: i64,
    /// Items per page, 1..=[`MAX_PER_PAGE`].
    pub per_page: i64,
}

/// Why page parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `page` below 1.
    #[error("page must be at least 1")]
    Page,
    /// `per_page` outside 1..=500.
    #[error("per_page must be between 1 and {MAX_PER_PAGE}")]
    PerPage,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl PageRequest {
    /// Validates the query's values; absent ones take the defaults. A
    /// value out of range is refused rather than silently clamped, so a
    /// client asking for 1,000 items learns it gets at most 500.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Self, PageError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page < 1 {
            return Err(PageError::Page);
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(PageError::PerPage);
        }
        Ok(Self { page, per_page })
    }

    /// Rows to skip (saturating: a huge page number reads nothing).
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// Rows to read.
    pub fn limit(&self) -> i64 {
        self.per_page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_offsets() {
        assert_eq!(PageRequest::new(None, None), Ok(PageRequest::default()));
        assert_eq!(PageRequest::new(Some(0), None), Err(PageError::Page));
        assert_eq!(PageRequest::new(None, Some(0)), Err(PageError::PerPage));
        assert_eq!(PageRequest::new(None, Some(501)), Err(PageError::PerPage));
        let p = PageRequest::new(Some(3), Some(500)).unwrap_or_default();
        assert_eq!((p.offset(), p.limit()), (1000, 500));
        let far = PageRequest::new(Some(i64::MAX), Some(500)).unwrap_or_default();
        assert_eq!(far.offset(), i64::MAX);
    }
}
