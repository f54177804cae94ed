//! Pure parsers for the probes the compose updater runs: which image each service's container
//! runs, and which image id a reference points at after a pull. The probes print tab-separated
//! lines behind a marker, so stray output (warnings, pull progress) is ignored.

/// Marker of a service line: `tendhost-svc<TAB>SERVICE<TAB>IMAGE_ID<TAB>IMAGE_REF`.
pub const SERVICE_MARKER: &str = "tendhost-svc";
/// Marker of an image line: `tendhost-img<TAB>IMAGE_REF<TAB>IMAGE_ID`.
pub const IMAGE_MARKER: &str = "tendhost-img";

/// One service as the probe saw it; `image_id` and `image_ref` are `None` without a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProbe {
    pub service: String,
    pub image_id: Option<String>,
    pub image_ref: Option<String>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses the service probe.
pub fn parse_services(text: &str) -> Vec<ServiceProbe> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            (fields.next()? == SERVICE_MARKER).then_some(())?;
            let service = non_empty(fields.next())?;
            Some(ServiceProbe {
                service,
                image_id: non_empty(fields.next()),
                image_ref: non_empty(fields.next()),
            })
        })
        .collect()
}

/// Parses the image probe into `(reference, id)`; an image missing locally has no id.
pub fn parse_images(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            (fields.next()? == IMAGE_MARKER).then_some(())?;
            let reference = non_empty(fields.next())?;
            Some((reference, non_empty(fields.next())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_services_with_and_without_containers() {
        let text = "WARNING: something\n\
                    tendhost-svc\tweb\tsha256:aaa\t127.0.0.1:5000/web:latest\n\
                    tendhost-svc\tworker\t\t\n";
        let s = parse_services(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].image_id.as_deref(), Some("sha256:aaa"));
        assert_eq!(s[0].image_ref.as_deref(), Some("127.0.0.1:5000/web:latest"));
        assert_eq!(s[1].image_id, None);
    }

    #[test]
    fn reads_image_ids() {
        let text = "tendhost-img\tweb:latest\tsha256:bbb\ntendhost-img\tgone:1\t\nnoise\n";
        assert_eq!(
            parse_images(text),
            [
                ("web:latest".to_string(), Some("sha256:bbb".to_string())),
                ("gone:1".to_string(), None)
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*", tabs in "(tendhost-(svc|img)\t[a-z\t]{0,9}\n){0,5}") {
            let _ = parse_services(&text);
            let _ = parse_images(&text);
            let _ = parse_services(&tabs);
            let _ = parse_images(&tabs);
        }
    }
}
