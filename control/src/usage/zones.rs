//! The ExpressRoute pricing zone of each peering location of global
//! commercial Azure (metered data is billed per GB at its zone's rate).
//! From Microsoft's "ExpressRoute peering locations and connectivity
//! partners" page (azure-docs, articles/expressroute/
//! expressroute-locations-providers.md at commit 0034968, ms.date
//! 04/28/2026, the same version as `circuit/data/catalog.toml`; its
//! "Zone" column). National clouds' locations have no zone there.
const ZONES: &[(&str, u8)] = &[
    ("Abu Dhabi", 3),
    ("Amsterdam", 1),
    ("Amsterdam2", 1),
    ("Atlanta", 1),
    ("Atlanta2", 1),
    ("Auckland", 2),
    ("Bangkok", 2),
    ("Berlin", 1),
    ("Brussels", 1),
    ("Brussels2", 1),
    ("Busan", 2),
    ("Campinas", 3),
    ("Canberra", 1),
    ("Canberra2", 1),
    ("Cape Town", 3),
    ("Chennai", 2),
    ("Chennai2", 2),
    ("Chicago", 1),
    ("Chicago2", 1),
    ("Copenhagen", 1),
    ("Dallas", 1),
    ("Dallas2", 1),
    ("Denver", 1),
    ("Doha", 3),
    ("Doha2", 3),
    ("Dubai", 3),
    ("Dubai2", 3),
    ("Dublin", 1),
    ("Dublin2", 1),
    ("Frankfurt", 1),
    ("Frankfurt2", 1),
    ("Geneva", 1),
    ("Hong Kong", 2),
    ("Hong Kong2", 2),
    ("Jakarta", 2),
    ("Jakarta2", 2),
    ("Johannesburg", 3),
    ("Kuala Lumpur", 2),
    ("Kuala Lumpur2", 2),
    ("Las Vegas", 1),
    ("London", 1),
    ("London2", 1),
    ("Los Angeles", 1),
    ("Los Angeles2", 1),
    ("Madrid", 1),
    ("Madrid2", 1),
    ("Marseille", 1),
    ("Melbourne", 2),
    ("Melbourne2", 2),
    ("Miami", 1),
    ("Milan", 1),
    ("Milan2", 1),
    ("Minneapolis", 1),
    ("Montreal", 1),
    ("Mumbai", 2),
    ("Mumbai2", 2),
    ("Munich", 1),
    ("New York", 1),
    ("Newport(Wales)", 1),
    ("Osaka", 2),
    ("Oslo", 1),
    ("Paris", 1),
    ("Paris2", 1),
    ("Perth", 2),
    ("Phoenix", 1),
    ("Phoenix2", 1),
    ("Portland", 1),
    ("Pune", 2),
    ("Quebec City", 1),
    ("Queretaro (Mexico)", 4),
    ("Quincy", 1),
    ("Rio de Janeiro", 3),
    ("San Antonio", 1),
    ("Santiago", 3),
    ("Sao Paulo", 3),
    ("Sao Paulo2", 3),
    ("Seattle", 1),
    ("Seoul", 2),
    ("Seoul2", 2),
    ("Silicon Valley", 1),
    ("Silicon Valley2", 1),
    ("Singapore", 2),
    ("Singapore2", 2),
    ("Stavanger", 1),
    ("Stockholm", 1),
    ("Stockholm2", 1),
    ("Sydney", 2),
    ("Sydney2", 2),
    ("Taipei", 2),
    ("Taipei2", 2),
    ("Tel Aviv", 2),
    ("Tel Aviv2", 2),
    ("Tokyo", 2),
    ("Tokyo2", 2),
    ("Tokyo3", 2),
    ("Toronto", 1),
    ("Toronto2", 1),
    ("Vancouver", 1),
    ("Vienna", 1),
    ("Vienna2", 1),
    ("Warsaw", 1),
    ("Washington DC", 1),
    ("Washington DC2", 1),
    ("Zurich", 1),
    ("Zurich2", 1),
];

/// The pricing zone of `location` (by its catalog name), if it has one.
pub fn zone_of(location: &str) -> Option<u8> {
    ZONES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(location))
        .map(|(_, z)| *z)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_commercial_location_of_the_catalog_has_a_zone() {
        let catalog = circuit::Catalog::embedded();
        let mut missing = Vec::new();
        for loc in &catalog.peering_locations {
            if !loc.national && super::zone_of(&loc.name).is_none() {
                missing.push(loc.name.clone());
            }
        }
        assert!(missing.is_empty(), "no zone for {missing:?}");
        assert_eq!(super::zone_of("Amsterdam"), Some(1));
        assert_eq!(super::zone_of("Tokyo"), Some(2));
        assert_eq!(super::zone_of("Sao Paulo"), Some(3));
    }
}
