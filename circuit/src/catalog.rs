//! The catalog: peering locations, Azure regions, geopolitical areas and BGP
//! communities. Shipped as `data/catalog.toml` and embedded at build time.

use serde::Deserialize;

use crate::community::Community;

/// The catalog embedded in the crate.
pub const EMBEDDED_CATALOG: &str = include_str!("../data/catalog.toml");

/// An Azure region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// Programmatic name, e.g. `westeurope`.
    pub id: String,
    /// Display name, e.g. `West Europe`.
    pub name: String,
    /// Geopolitical area, e.g. `Europe`.
    pub area: String,
    /// Region BGP community attached to routes from this region.
    pub community: Community,
    /// National cloud (isolated from the global cloud).
    #[serde(default)]
    pub national: bool,
}

/// An ExpressRoute peering location.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeeringLocation {
    pub name: String,
    pub metro: String,
    pub area: String,
    /// Display names of the regions a Local circuit at this location reaches.
    pub local_regions: Vec<String>,
    #[serde(default)]
    pub national: bool,
}

/// A Microsoft peering service community (e.g. 12076:5010 Exchange Online).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceCommunity {
    pub name: String,
    pub community: Community,
    /// The prefixes the emulated service is advertised with on Microsoft
    /// peering when a route filter selects its community.
    #[serde(default)]
    pub prefixes: Vec<ipnet::IpNet>,
}

/// What a community in a route filter stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunityKind<'a> {
    Service(&'a ServiceCommunity),
    Region(&'a Region),
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("catalog is inconsistent: {0}")]
    Inconsistent(String),
}

/// Peering locations, regions and communities.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    pub regions: Vec<Region>,
    pub peering_locations: Vec<PeeringLocation>,
    pub service_communities: Vec<ServiceCommunity>,
}

impl Catalog {
    /// The catalog shipped with the crate.
    pub fn embedded() -> Self {
        Self::from_toml(EMBEDDED_CATALOG).expect("the embedded catalog is valid (tested)")
    }

    /// Parses and checks a catalog: names unique, every location's local
    /// regions exist and lie in the location's area, communities unique.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = toml::from_str(text)?;
        catalog.check()?;
        Ok(catalog)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let bad = |m: String| Err(CatalogError::Inconsistent(m));
        for (i, r) in self.regions.iter().enumerate() {
            for other in &self.regions[..i] {
                if other.id.eq_ignore_ascii_case(&r.id) || other.name.eq_ignore_ascii_case(&r.name)
                {
                    return bad(format!("region {} is listed twice", r.name));
                }
                if other.community == r.community {
                    return bad(format!(
                        "regions {} and {} share community {}",
                        other.name, r.name, r.community
                    ));
                }
            }
        }
        for (i, l) in self.peering_locations.iter().enumerate() {
            if self.peering_locations[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&l.name))
            {
                return bad(format!("peering location {} is listed twice", l.name));
            }
            if l.local_regions.is_empty() {
                return bad(format!("peering location {} has no local region", l.name));
            }
            for name in &l.local_regions {
                let Some(r) = self.region(name) else {
                    return bad(format!(
                        "peering location {}: unknown local region {name}",
                        l.name
                    ));
                };
                if r.area != l.area || r.national != l.national {
                    return bad(format!(
                        "peering location {} ({}) lists local region {} of area {}",
                        l.name, l.area, r.name, r.area
                    ));
                }
            }
        }
        for (i, s) in self.service_communities.iter().enumerate() {
            if self.service_communities[..i]
                .iter()
                .any(|o| o.community == s.community)
                || self.regions.iter().any(|r| r.community == s.community)
            {
                return bad(format!("community {} is listed twice", s.community));
            }
            for prefix in &s.prefixes {
                if prefix.trunc() != *prefix {
                    return bad(format!(
                        "service {}: prefix {prefix} has host bits set",
                        s.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// A region by display name (`West Europe`) or programmatic name
    /// (`westeurope`), case-insensitively.
    pub fn region(&self, name: &str) -> Option<&Region> {
        let name = name.trim();
        self.regions
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.id.eq_ignore_ascii_case(name))
    }

    /// A peering location by name, case-insensitively.
    pub fn peering_location(&self, name: &str) -> Option<&PeeringLocation> {
        let name = name.trim();
        self.peering_locations
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// What a community means: a Microsoft service or a region.
    pub fn community(&self, c: Community) -> Option<CommunityKind<'_>> {
        if let Some(s) = self.service_communities.iter().find(|s| s.community == c) {
            return Some(CommunityKind::Service(s));
        }
        self.regions
            .iter()
            .find(|r| r.community == c)
            .map(CommunityKind::Region)
    }

    /// Regions of a Local circuit at `location`.
    pub fn local_regions<'a>(
        &'a self,
        location: &'a PeeringLocation,
    ) -> impl Iterator<Item = &'a Region> + 'a {
        location.local_regions.iter().filter_map(|n| self.region(n))
    }

    /// Regions of a geopolitical area.
    pub fn regions_in_area<'a>(&'a self, area: &'a str) -> impl Iterator<Item = &'a Region> + 'a {
        self.regions.iter().filter(move |r| r.area == area)
    }

    /// Names of all peering locations, for error messages.
    pub fn peering_location_names(&self) -> Vec<&str> {
        self.peering_locations
            .iter()
            .map(|l| l.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_consistent() {
        let c = Catalog::from_toml(EMBEDDED_CATALOG).unwrap();
        assert!(c.peering_locations.len() >= 15);
        assert!(c.peering_locations.iter().any(|l| l.national));
        for area in ["North America", "Europe", "Asia Pacific"] {
            assert!(c.peering_locations.iter().any(|l| l.area == area), "{area}");
        }
        assert_eq!(c.service_communities.len(), 6);
    }

    #[test]
    fn lookups() {
        let c = Catalog::embedded();
        assert_eq!(c.region("westeurope").unwrap().name, "West Europe");
        assert_eq!(
            c.region("West Europe").unwrap().community,
            Community::new(12076, 51002)
        );
        assert_eq!(
            c.region("north europe").unwrap().community,
            Community::new(12076, 51003)
        );
        assert_eq!(c.peering_location("amsterdam").unwrap().area, "Europe");
        let dc = c.peering_location("Washington DC").unwrap();
        let local: Vec<_> = c.local_regions(dc).map(|r| r.name.as_str()).collect();
        assert_eq!(local, ["East US", "East US 2"]);
        assert!(matches!(
            c.community(Community::new(12076, 5010)),
            Some(CommunityKind::Service(s)) if s.name == "Exchange Online"
        ));
        assert!(matches!(
            c.community(Community::new(12076, 51004)),
            Some(CommunityKind::Region(r)) if r.name == "East US"
        ));
        assert!(c.community(Community::new(12076, 1)).is_none());
    }

    #[test]
    fn documented_community_values() {
        let c = Catalog::embedded();
        for (region, value) in [
            ("West Europe", 51002),
            ("North Europe", 51003),
            ("East US", 51004),
            ("West US", 51006),
        ] {
            assert_eq!(
                c.region(region).unwrap().community,
                Community::new(12076, value),
                "{region}"
            );
        }
        let services: Vec<u16> = c
            .service_communities
            .iter()
            .map(|s| s.community.value)
            .collect();
        assert_eq!(services, [5010, 5020, 5030, 5040, 5050, 5100]);
        for l in [
            "Dublin",
            "Silicon Valley",
            "London",
            "Tokyo",
            "Singapore",
            "Sydney",
            "Frankfurt",
        ] {
            assert_eq!(c.peering_location(l).unwrap().local_regions.len(), 1, "{l}");
        }
    }

    #[test]
    fn inconsistent_catalog_is_refused() {
        let text = r#"
regions = [{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002" }]
serviceCommunities = []
[[peeringLocations]]
name = "Amsterdam"
metro = "Amsterdam"
area = "Europe"
localRegions = ["East US"]
"#;
        let err = Catalog::from_toml(text).unwrap_err();
        assert!(
            err.to_string().contains("unknown local region East US"),
            "{err}"
        );
    }
}
