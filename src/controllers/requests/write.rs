//! The one status write of the pipeline: a server-side apply carrying the resourceVersion the
//! decision was made on, so it never lands on a version this replica has not seen (a
//! certificate another replica or an earlier run wrote, a denial).

use kube::api::{Patch, PatchParams};
use kube::ResourceExt;

use super::{RequestKind, Write};
use crate::api::FIELD_MANAGER;
use crate::controllers::{Context, Error};

/// Attempts of a status write that meets newer versions of the request.
pub const WRITE_ATTEMPTS: usize = 3;

/// How a status write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The status now says what we wrote (or this kind records nothing for it).
    Done,
    /// The request changed so that the write would be wrong; nothing was written.
    Superseded,
}

/// Apply `write` to `req` as decided on. On a conflict the request is read again and written
/// again while `still(fresh)` holds, at most [`WRITE_ATTEMPTS`] times.
pub async fn write_status<K: RequestKind>(
    ctx: &Context,
    req: &K,
    write: &Write,
    still: impl Fn(&K) -> bool,
) -> Result<Written, Error> {
    let api = K::api(ctx.client.clone(), req);
    let name = req.name_any();
    let mut current = req.clone();
    for attempt in 1..=WRITE_ATTEMPTS {
        let Some(mut patch) = current.status_patch(write) else {
            return Ok(Written::Done);
        };
        ctx.check_fence()?;
        if let Some(rv) = &current.meta().resource_version {
            patch["metadata"] = serde_json::json!({ "resourceVersion": rv });
        }
        let result = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await;
        match result {
            Ok(_) => return Ok(Written::Done),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < WRITE_ATTEMPTS => {
                let fresh = api.get(&name).await?;
                if fresh.meta().uid != req.meta().uid || !still(&fresh) {
                    return Ok(Written::Superseded);
                }
                current = fresh;
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}
